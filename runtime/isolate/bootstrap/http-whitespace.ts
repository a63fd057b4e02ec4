const isTabOrSpace = (char: string | undefined) => char === " " || char === "\t";
const isHttpWhitespace = (char: string | undefined) => char === " " || char === "\t" || char === "\r" || char === "\n";

/**
 * Strips HTTP's optional whitespace (tabs and spaces, RFC 9110 §5.6.3) from both ends. A loop, not
 * `/^[\t ]+|[\t ]+$/g`: V8 retries that regex's second branch at every char of an inner run, which
 * took 27 ms on one 8 KB header line and would let a crafted body cost seconds.
 */
export function trimTabsAndSpaces(text: string): string {
  return trimWhile(text, isTabOrSpace);
}

/** Strips HTTP whitespace (tab, space, CR, LF: https://fetch.spec.whatwg.org/#http-whitespace) from both ends, by the same loop. */
export function trimHttpWhitespace(text: string): string {
  return trimWhile(text, isHttpWhitespace);
}

function trimWhile(text: string, strip: (char: string | undefined) => boolean): string {
  let start = 0;
  let end = text.length;
  while (start < end && strip(text[start])) start++;
  while (end > start && strip(text[end - 1])) end--;
  return text.slice(start, end);
}
