/** Lazy part "formData" (lazy.ts): FormData's multipart/urlencoded parser and its serializer. */
export { parseFormData } from "../form-data-parse.ts";
export { serializeFormData } from "../form-data-serialize.ts";
