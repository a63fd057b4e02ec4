// whatwg-mimetype ships no types. The bootstrap imports only its MIMEType class (lib/mime-type.js,
// without the 24 KB sniffing table of the package's main entry); this is the part of it we use.
declare module "whatwg-mimetype/lib/mime-type.js" {
  export default class MIMEType {
    /** Null when `input` is not a valid MIME type (https://mimesniff.spec.whatwg.org/#parse-a-mime-type). */
    static parse(input: string): MIMEType | null;
    /** Lowercase `type/subtype`. */
    readonly essence: string;
    /** Keyed by lowercase parameter name; values keep their case, quotes removed. */
    readonly parameters: {
      get(name: string): string | undefined;
      has(name: string): boolean;
      set(name: string, value: string): void;
    };
    /** The MIME type serialized (https://mimesniff.spec.whatwg.org/#serialize-a-mime-type). */
    toString(): string;
  }
}
