import { HearthError } from "./errors.ts";

/**
 * Function names are DNS labels (RFC 1123): lowercase letters, digits and inner hyphens, 1–63
 * characters. They become NATS subject tokens and KV keys, so nothing else may pass.
 */
const FUNCTION_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Throws ERR_INVALID_NAME unless `name` is a valid function name; returns it otherwise. */
export function validateFunctionName(name: unknown): string {
  if (typeof name !== "string" || !FUNCTION_NAME.test(name)) {
    throw new HearthError(
      "ERR_INVALID_NAME",
      `Invalid function name ${JSON.stringify(name)}: use 1-63 lowercase letters, digits or hyphens, starting and ending with a letter or digit.`,
    );
  }
  return name;
}

/** Whether `name` follows the function-name rule, which namespace names share. */
export function isValidName(name: unknown): name is string {
  return typeof name === "string" && FUNCTION_NAME.test(name);
}

/** Throws ERR_INVALID_NAME unless `name` is a valid namespace name (the function-name rule); returns it. */
export function validateNamespaceName(name: unknown): string {
  if (!isValidName(name)) {
    throw new HearthError(
      "ERR_INVALID_NAME",
      `Invalid namespace name ${JSON.stringify(name)}: use 1-63 lowercase letters, digits or hyphens, starting and ending with a letter or digit.`,
    );
  }
  return name;
}
