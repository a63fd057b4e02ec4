/** What the control plane stores per function, as JSON in the functions KV bucket. */
export interface FunctionRecord {
  readonly name: string;
  /** sha256 (hex) of the classic-script bundle in the bundles object store. */
  readonly digest: string;
  readonly bundleBytes: number;
  readonly env: Readonly<Record<string, string>>;
  readonly memoryMb: number;
  readonly timeoutMs: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}
