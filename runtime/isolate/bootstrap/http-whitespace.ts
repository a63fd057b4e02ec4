const isTabOrSpace = (char: string | undefined) => char === " " || char === "\t";

/**
 * Strips HTTP's optional whitespace (tabs and spaces, RFC 9110 §5.6.3) from both ends. A loop, not
 * `/^[\t ]+|[\t ]+$/g`: V8 retries that regex's second branch at every char of an inner run, which
 * took 27 ms on one 8 KB header line and would let a crafted body cost seconds.
 */
export function trimTabsAndSpaces(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isTabOrSpace(text[start])) start++;
  while (end > start && isTabOrSpace(text[end - 1])) end--;
  return text.slice(start, end);
}
