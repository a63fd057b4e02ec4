import { generateKeyPairSync, webcrypto } from "node:crypto";
import { build } from "esbuild";
import { verify as honoVerify } from "hono/jwt";
import ivm from "isolated-vm";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { isolateFor, requestJson, text } from "../../test/support/isolate.ts";
import { CRYPTO_LIMITS } from "./bootstrap/crypto/limits.ts";
import { CryptoHost } from "./crypto-host.ts";
import type { FunctionIsolate } from "./function-isolate.ts";

/**
 * crypto.subtle inside a real isolate, checked against the known-answer vectors of the RFCs and
 * specs that define each algorithm, and against Node's own Web Crypto on the host.
 */
const PROBES = `
const s = crypto.subtle;
const enc = new TextEncoder();
const hex = (b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (h) => new Uint8Array((h.match(/../g) ?? []).map((x) => parseInt(x, 16)));
const b64url = (b) => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
const unb64url = (t) => Uint8Array.from(atob(t.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
const failure = async (f) => { try { await f(); return "no error"; } catch (e) { return e.name; } };
const failureText = async (f) => { try { await f(); return "no error"; } catch (e) { return [e instanceof DOMException, e.name, e.message]; } };

async function jwtSign(alg, params, key, claims) {
  const head = b64url(enc.encode(JSON.stringify({ alg, typ: "JWT" })));
  const body = b64url(enc.encode(JSON.stringify(claims)));
  return head + "." + body + "." + b64url(await s.sign(params, key, enc.encode(head + "." + body)));
}
async function jwtVerify(params, key, token) {
  const [head, body, sig] = token.split(".");
  return s.verify(params, key, unb64url(sig), enc.encode(head + "." + body));
}

const probes = {
  async digest() {
    const abc = enc.encode("abc");
    return [hex(await s.digest("SHA-1", abc)), hex(await s.digest({ name: "sha-256" }, abc)),
      hex(await s.digest("SHA-384", abc)).slice(0, 16), hex(await s.digest("SHA-512", abc.buffer)).slice(0, 16),
      await failure(() => s.digest("MD5", abc)), await failure(() => s.digest("SHA-256", "abc"))];
  },
  async hmac({ cases }) {
    const out = [];
    for (const c of cases) {
      const key = await s.importKey("raw", unhex(c.key), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
      const mac = await s.sign("HMAC", key, unhex(c.data));
      out.push([hex(mac), await s.verify("HMAC", key, mac, unhex(c.data))]);
    }
    return out;
  },
  async hkdf({ cases }) {
    const out = [];
    for (const c of cases) {
      const key = await s.importKey("raw", unhex(c.ikm), "HKDF", false, ["deriveBits"]);
      out.push(hex(await s.deriveBits({ name: "HKDF", hash: "SHA-256", salt: unhex(c.salt), info: unhex(c.info) }, key, c.length * 8)));
    }
    return out;
  },
  async pbkdf2({ cases }) {
    const out = [];
    for (const c of cases) {
      const key = await s.importKey("raw", enc.encode(c.password), { name: "PBKDF2" }, false, ["deriveBits"]);
      out.push(hex(await s.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: enc.encode(c.salt), iterations: c.iterations }, key, c.length * 8)));
    }
    return out;
  },
  async aesGcm({ cases }) {
    const out = [];
    for (const c of cases) {
      const key = await s.importKey("raw", unhex(c.key), "AES-GCM", false, ["encrypt", "decrypt"]);
      const params = { name: "AES-GCM", iv: unhex(c.iv), ...(c.aad ? { additionalData: unhex(c.aad) } : {}) };
      const sealed = await s.encrypt(params, key, unhex(c.plaintext));
      out.push([hex(sealed), hex(await s.decrypt(params, key, sealed))]);
    }
    return out;
  },
  async ed25519({ cases }) {
    const out = [];
    for (const c of cases) {
      const priv = await s.importKey("pkcs8", unhex("302e020100300506032b657004220420" + c.secret), "Ed25519", true, ["sign"]);
      const pub = await s.importKey("raw", unhex(c.public), { name: "Ed25519" }, true, ["verify"]);
      const sig = await s.sign("Ed25519", priv, unhex(c.message));
      const tampered = unhex(c.signature); tampered[0] ^= 1;
      out.push([hex(sig), await s.verify("Ed25519", pub, unhex(c.signature), unhex(c.message)),
        await s.verify("Ed25519", pub, tampered, unhex(c.message)), hex(unb64url((await s.exportKey("jwk", priv)).x))]);
    }
    return out;
  },
  async ecdsaKnown({ jwk, vectors }) {
    const pub = await s.importKey("jwk", { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, { name: "ECDSA", namedCurve: "P-256" }, true, ["verify"]);
    const priv = await s.importKey("jwk", jwk, { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
    const out = [];
    for (const v of vectors) {
      const good = await s.verify({ name: "ECDSA", hash: "SHA-256" }, pub, unhex(v.signature), enc.encode(v.message));
      const other = await s.verify({ name: "ECDSA", hash: "SHA-256" }, pub, unhex(v.signature), enc.encode(v.message + "!"));
      const ours = await s.sign({ name: "ECDSA", hash: "SHA-256" }, priv, enc.encode(v.message));
      out.push([good, other, ours.byteLength, await s.verify({ name: "ECDSA", hash: "SHA-256" }, pub, ours, enc.encode(v.message))]);
    }
    return [out, pub.type, priv.type, pub.extractable, priv.extractable, pub.algorithm, priv.usages, Object.prototype.toString.call(pub), pub instanceof CryptoKey];
  },
  async ecdsaRoundTrip({ curve, hash }) {
    const pair = await s.generateKey({ name: "ECDSA", namedCurve: curve }, false, ["sign", "verify"]);
    const data = enc.encode("round trip");
    const sig = await s.sign({ name: "ECDSA", hash }, pair.privateKey, data);
    return [pair.publicKey.extractable, pair.privateKey.extractable, pair.publicKey.usages, pair.privateKey.usages,
      sig.byteLength, await s.verify({ name: "ECDSA", hash }, pair.publicKey, sig, data),
      await s.verify({ name: "ECDSA", hash }, pair.publicKey, sig, enc.encode("other")),
      b64url(await s.exportKey("spki", pair.publicKey)).length > 0];
  },
  async jwkRoundTrips() {
    const hmac = await s.generateKey({ name: "HMAC", hash: "SHA-384" }, true, ["sign", "verify"]);
    const hmacJwk = await s.exportKey("jwk", hmac);
    const hmacBack = await s.importKey("jwk", hmacJwk, { name: "HMAC", hash: "SHA-384" }, true, ["sign", "verify"]);
    const sameMac = hex(await s.sign("HMAC", hmac, enc.encode("x"))) === hex(await s.sign("HMAC", hmacBack, enc.encode("x")));

    const ec = await s.generateKey({ name: "ECDSA", namedCurve: "P-384" }, true, ["sign", "verify"]);
    const ecJwk = await s.exportKey("jwk", ec.privateKey);
    const ecBack = await s.importKey("jwk", ecJwk, { name: "ECDSA", namedCurve: "P-384" }, true, ["sign"]);
    const sig = await s.sign({ name: "ECDSA", hash: "SHA-384" }, ecBack, enc.encode("y"));
    const ecOk = await s.verify({ name: "ECDSA", hash: "SHA-384" }, ec.publicKey, sig, enc.encode("y"));
    const ecReexport = await s.exportKey("jwk", ecBack);

    const aes = await s.generateKey({ name: "AES-GCM", length: 256 }, true, ["encrypt", "decrypt"]);
    const aesJwk = await s.exportKey("jwk", aes);
    const aesBack = await s.importKey("jwk", aesJwk, "AES-GCM", false, ["decrypt"]);
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const sealed = await s.encrypt({ name: "AES-GCM", iv }, aes, enc.encode("secret"));
    const opened = new TextDecoder().decode(await s.decrypt({ name: "AES-GCM", iv }, aesBack, sealed));

    const ed = await s.generateKey("Ed25519", true, ["sign", "verify"]);
    const edPub = await s.importKey("jwk", await s.exportKey("jwk", ed.publicKey), "Ed25519", true, ["verify"]);
    const edOk = await s.verify("Ed25519", edPub, await s.sign("Ed25519", ed.privateKey, enc.encode("z")), enc.encode("z"));

    return [[hmacJwk.kty, hmacJwk.alg, hmacJwk.key_ops, hmacJwk.ext, hmacBack.algorithm], sameMac,
      [ecJwk.kty, ecJwk.crv, typeof ecJwk.d, ecJwk.key_ops, ecJwk.ext], ecOk, ecReexport.d === ecJwk.d && ecReexport.x === ecJwk.x,
      [aesJwk.kty, aesJwk.alg, aesJwk.k.length], opened, edOk];
  },
  async jwts() {
    const hsKey = await s.importKey("raw", enc.encode("a shared secret for HS256 tokens"), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
    const hs = await jwtSign("HS256", "HMAC", hsKey, { sub: "42", iat: 1700000000 });
    const hsTampered = hs.replace(/\\.[^.]+\\./, "." + b64url(enc.encode(JSON.stringify({ sub: "43", iat: 1700000000 }))) + ".");
    const pair = await s.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
    const es = await jwtSign("ES256", { name: "ECDSA", hash: "SHA-256" }, pair.privateKey, { sub: "42" });
    return { hs, hsOk: await jwtVerify("HMAC", hsKey, hs), hsTampered: await jwtVerify("HMAC", hsKey, hsTampered),
      es, esOk: await jwtVerify({ name: "ECDSA", hash: "SHA-256" }, pair.publicKey, es), esPublic: await s.exportKey("jwk", pair.publicKey) };
  },
  async rsaVerify({ spki, jwk, data, pkcs1, pss }) {
    const rs = await s.importKey("spki", unb64url(spki), { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, ["verify"]);
    const ps = await s.importKey("jwk", jwk, { name: "RSA-PSS", hash: "SHA-256" }, false, ["verify"]);
    return [await s.verify("RSASSA-PKCS1-v1_5", rs, unb64url(pkcs1), enc.encode(data)),
      await s.verify("RSASSA-PKCS1-v1_5", rs, unb64url(pkcs1), enc.encode(data + ".")),
      await s.verify({ name: "RSA-PSS", saltLength: 32 }, ps, unb64url(pss), enc.encode(data)),
      rs.algorithm.name, rs.algorithm.modulusLength, [...rs.algorithm.publicExponent], rs.algorithm.hash];
  },
  async derivations() {
    const a = await s.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits", "deriveKey"]);
    const b = await s.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"]);
    const ab = hex(await s.deriveBits({ name: "ECDH", public: b.publicKey }, a.privateKey, 256));
    const ba = hex(await s.deriveBits({ name: "ECDH", public: a.publicKey }, b.privateKey, 256));
    const x1 = await s.generateKey("X25519", false, ["deriveBits"]);
    const x2 = await s.generateKey("X25519", false, ["deriveBits"]);
    const x12 = hex(await s.deriveBits({ name: "X25519", public: x2.publicKey }, x1.privateKey, 256));
    const x21 = hex(await s.deriveBits({ name: "X25519", public: x1.publicKey }, x2.privateKey, 256));
    const ikm = await s.importKey("raw", unhex(ab), "HKDF", false, ["deriveKey"]);
    const aes = await s.deriveKey({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(16), info: enc.encode("v1") }, ikm,
      { name: "AES-GCM", length: 128 }, true, ["encrypt"]);
    const pw = await s.importKey("raw", enc.encode("hunter2"), "PBKDF2", false, ["deriveKey"]);
    const mac = await s.deriveKey({ name: "PBKDF2", hash: "SHA-256", salt: enc.encode("salt"), iterations: 1000 }, pw,
      { name: "HMAC", hash: "SHA-256", length: 256 }, true, ["sign"]);
    return [ab === ba, ab.length, x12 === x21, aes.algorithm, (await s.exportKey("raw", aes)).byteLength, mac.algorithm,
      (await s.exportKey("raw", mac)).byteLength];
  },
  async wrapping() {
    const kek = await s.generateKey({ name: "AES-GCM", length: 256 }, false, ["wrapKey", "unwrapKey"]);
    const mac = await s.generateKey({ name: "HMAC", hash: "SHA-256" }, true, ["sign"]);
    const iv = new Uint8Array(12);
    const wrapped = await s.wrapKey("jwk", mac, kek, { name: "AES-GCM", iv });
    const back = await s.unwrapKey("jwk", wrapped, kek, { name: "AES-GCM", iv }, { name: "HMAC", hash: "SHA-256" }, true, ["sign"]);
    const cbc = await s.generateKey({ name: "AES-CBC", length: 128 }, true, ["encrypt", "decrypt"]);
    const ctr = await s.generateKey({ name: "AES-CTR", length: 128 }, true, ["encrypt", "decrypt"]);
    const cbcIv = new DataView(new ArrayBuffer(16)); // any BufferSource, not only Uint8Array
    const cbcText = await s.decrypt({ name: "AES-CBC", iv: cbcIv }, cbc, await s.encrypt({ name: "AES-CBC", iv: cbcIv }, cbc, enc.encode("cbc")));
    const ctrParams = { name: "AES-CTR", counter: new Uint8Array(16), length: 64 };
    const ctrText = await s.decrypt(ctrParams, ctr, await s.encrypt(ctrParams, ctr, enc.encode("ctr")));
    const oaep = await s.generateKey({ name: "RSA-OAEP", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
      false, ["encrypt", "decrypt"]);
    const oaepText = await s.decrypt({ name: "RSA-OAEP", label: enc.encode("l") }, oaep.privateKey,
      await s.encrypt({ name: "RSA-OAEP", label: enc.encode("l") }, oaep.publicKey, enc.encode("oaep")));
    return [hex(await s.sign("HMAC", mac, enc.encode("m"))) === hex(await s.sign("HMAC", back, enc.encode("m"))),
      new TextDecoder().decode(cbcText), new TextDecoder().decode(ctrText), new TextDecoder().decode(oaepText),
      await failure(() => structuredClone(mac))];
  },
  async errors() {
    const hmac = await s.importKey("raw", new Uint8Array(32), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
    const aes = await s.importKey("raw", new Uint8Array(16), "AES-GCM", false, ["encrypt", "decrypt"]);
    const pair = await s.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
    const iv = new Uint8Array(12);
    const sealed = new Uint8Array(await s.encrypt({ name: "AES-GCM", iv }, aes, enc.encode("hello")));
    sealed[0] ^= 1;
    const pbkdf2 = await s.importKey("raw", enc.encode("pw"), "PBKDF2", false, ["deriveBits"]);
    let illegal = null;
    try { new CryptoKey(); } catch (e) { illegal = e.name; }
    return {
      wrongUsage: await failure(() => s.sign("HMAC", hmac, new Uint8Array(1))),
      wrongAlgorithm: await failure(() => s.sign({ name: "ECDSA", hash: "SHA-256" }, hmac, new Uint8Array(1))),
      wrongKeyType: await failure(() => s.sign({ name: "ECDSA", hash: "SHA-256" }, pair.publicKey, new Uint8Array(1))),
      notExtractable: await failure(() => s.exportKey("jwk", aes)),
      badJwk: await failure(() => s.importKey("jwk", { kty: "EC", k: "AAAA" }, { name: "HMAC", hash: "SHA-256" }, false, ["sign"])),
      badPoint: await failure(() => s.importKey("raw", new Uint8Array([4, 1, 2, 3]), { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"])),
      badSpki: await failure(() => s.importKey("spki", new Uint8Array(40), { name: "RSA-PSS", hash: "SHA-256" }, false, ["verify"])),
      unknownAlgorithm: await failure(() => s.sign("FOO-BAR", hmac, new Uint8Array(1))),
      notForThisOp: await failure(() => s.encrypt("HMAC", hmac, new Uint8Array(1))),
      unknownHash: await failure(() => s.importKey("raw", new Uint8Array(8), { name: "HMAC", hash: "MD5" }, false, ["sign"])),
      badUsage: await failure(() => s.importKey("raw", new Uint8Array(8), { name: "HMAC", hash: "SHA-256" }, false, ["encrypt"])),
      noUsages: await failure(() => s.generateKey({ name: "AES-GCM", length: 128 }, false, [])),
      tampered: await failure(() => s.decrypt({ name: "AES-GCM", iv }, aes, sealed)),
      overCap: await failureText(() => s.encrypt({ name: "AES-GCM", iv }, aes, new Uint8Array(${CRYPTO_LIMITS.maxBytesPerOp + 1}))),
      tooManyIterations: await failureText(() => s.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: new Uint8Array(8), iterations: 100001 }, pbkdf2, 256)),
      bigRsa: await failure(() => s.generateKey({ name: "RSA-PSS", modulusLength: 8192, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" }, false, ["sign", "verify"])),
      notAKey: await failure(() => s.sign("HMAC", { type: "secret" }, new Uint8Array(1))),
      illegal,
    };
  },
  async parallel() {
    const pair = await s.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
    const data = enc.encode("many");
    const sigs = await Promise.all(Array.from({ length: 24 }, () => s.sign({ name: "ECDSA", hash: "SHA-256" }, pair.privateKey, data)));
    const oks = await Promise.all(sigs.map((sig) => s.verify({ name: "ECDSA", hash: "SHA-256" }, pair.publicKey, sig, data)));
    return oks.filter(Boolean).length;
  },
};
export default {
  async fetch(request) {
    const name = new URL(request.url).pathname.slice(1);
    const input = request.method === "POST" ? await request.json() : {};
    return Response.json(await probes[name](input));
  },
};`;

const hexOf = (bytes: ArrayBuffer | Uint8Array) => Buffer.from(bytes as ArrayBuffer).toString("hex");
const range = (from: number, to: number) => hexOf(Uint8Array.from({ length: to - from + 1 }, (_, i) => from + i));
const ascii = (s: string) => Buffer.from(s).toString("hex");

describe.each([
  ["from a V8 snapshot", true],
  ["compiled from source", false],
])("crypto.subtle inside the isolate, bootstrap %s", (_, snapshot) => {
  let fn: FunctionIsolate;
  beforeAll(async () => {
    fn = (await isolateFor(PROBES, { timeoutMs: 20_000, cpuMs: 5_000, memoryMb: 128, snapshot })).isolate;
  });
  afterAll(() => fn?.dispose());

  async function probe(name: string, input?: unknown): Promise<unknown> {
    const body = input === undefined ? null : new TextEncoder().encode(JSON.stringify(input));
    const out = await fn.invoke(name, requestJson(`http://fn.test/${name}`, body ? "POST" : "GET"), body);
    if (!out.ok) throw new Error(`${name}: ${out.code} ${out.message} ${out.detail?.stack ?? ""}`);
    return JSON.parse(text(out.body));
  }

  it("digest gives the FIPS 180 'abc' digests, matches names case-insensitively, refuses others", async () =>
    expect(await probe("digest")).toEqual([
      "a9993e364706816aba3e25717850c26c9cd0d89d",
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
      "cb00753f45a35e8b",
      "ddaf35a193617aba",
      "NotSupportedError",
      "TypeError",
    ]));

  it("HMAC-SHA-256 matches RFC 4231 test cases 1–7", async () => {
    const cases = [
      { key: "0b".repeat(20), data: ascii("Hi There") },
      { key: ascii("Jefe"), data: ascii("what do ya want for nothing?") },
      { key: "aa".repeat(20), data: "dd".repeat(50) },
      { key: range(1, 25), data: "cd".repeat(50) },
      { key: "0c".repeat(20), data: ascii("Test With Truncation") },
      { key: "aa".repeat(131), data: ascii("Test Using Larger Than Block-Size Key - Hash Key First") },
      {
        key: "aa".repeat(131),
        data: ascii(
          "This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
        ),
      },
    ];
    const out = (await probe("hmac", { cases })) as Array<[string, boolean]>;
    expect(out.map(([mac]) => mac)).toEqual([
      "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
      "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
      "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
      expect.stringMatching(/^a3b6167473100ee06e0c796c2955552b/), // RFC 4231 §4.6 gives the first 128 bits
      "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
      "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ]);
    expect(out.every(([, verified]) => verified)).toBe(true);
  });

  it("HKDF-SHA-256 matches RFC 5869 test cases 1–3", async () => {
    const cases = [
      { ikm: "0b".repeat(22), salt: range(0, 0x0c), info: range(0xf0, 0xf9), length: 42 },
      { ikm: range(0, 0x4f), salt: range(0x60, 0xaf), info: range(0xb0, 0xff), length: 82 },
      { ikm: "0b".repeat(22), salt: "", info: "", length: 42 },
    ];
    expect(await probe("hkdf", { cases })).toEqual([
      "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
      "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87",
      "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
    ]);
  });

  it("PBKDF2-HMAC-SHA256 matches the RFC 7914 §11 vectors", async () => {
    const cases = [
      { password: "passwd", salt: "salt", iterations: 1, length: 64 },
      { password: "Password", salt: "NaCl", iterations: 80_000, length: 64 },
    ];
    expect(await probe("pbkdf2", { cases })).toEqual([
      "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783",
      "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d",
    ]);
  });

  it("AES-GCM matches the GCM specification's test cases 2, 3, 4 and 14 and decrypts them back", async () => {
    const k3 = "feffe9928665731c6d6a8f9467308308";
    const p3 =
      "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
    const c3 =
      "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985";
    const cases = [
      { key: "00".repeat(16), iv: "00".repeat(12), plaintext: "00".repeat(16) },
      { key: k3, iv: "cafebabefacedbaddecaf888", plaintext: p3 },
      {
        key: k3,
        iv: "cafebabefacedbaddecaf888",
        plaintext: p3.slice(0, 120),
        aad: "feedfacedeadbeeffeedfacedeadbeefabaddad2",
      },
      { key: "00".repeat(32), iv: "00".repeat(12), plaintext: "00".repeat(16) },
    ];
    const out = (await probe("aesGcm", { cases })) as Array<[string, string]>;
    expect(out.map(([sealed]) => sealed)).toEqual([
      "0388dace60b6a392f328c2b971b2fe78ab6e47d42cec13bdf53a67b21257bddf",
      `${c3}4d5c2af327cd64a62cf35abd2ba6fab4`,
      `${c3.slice(0, 120)}5bc94fbc3221a5db94fae95ae7121a47`,
      "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919",
    ]);
    expect(out.map(([, opened]) => opened)).toEqual(cases.map((c) => c.plaintext));
  });

  it("Ed25519 signs and verifies RFC 8032 §7.1 tests 1–3", async () => {
    const cases = [
      {
        secret: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        public: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        message: "",
        signature:
          "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
      },
      {
        secret: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        public: "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        message: "72",
        signature:
          "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
      },
      {
        secret: "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        public: "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        message: "af82",
        signature:
          "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
      },
    ];
    expect(await probe("ed25519", { cases })).toEqual(cases.map((c) => [c.signature, true, false, c.public]));
  });

  it("ECDSA P-256 verifies the RFC 6979 A.2.5 deterministic signatures and round-trips its own", async () => {
    const b64 = (h: string) => Buffer.from(h, "hex").toString("base64url");
    const jwk = {
      kty: "EC",
      crv: "P-256",
      d: b64("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721"),
      x: b64("60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6"),
      y: b64("7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299"),
    };
    const vectors = [
      {
        message: "sample",
        signature:
          "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8",
      },
      {
        message: "test",
        signature:
          "F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083",
      },
    ];
    expect(await probe("ecdsaKnown", { jwk, vectors })).toEqual([
      [
        [true, false, 64, true],
        [true, false, 64, true],
      ],
      "public",
      "private",
      true,
      false,
      { name: "ECDSA", namedCurve: "P-256" },
      ["sign"],
      "[object CryptoKey]",
      true,
    ]);
  });

  it.each([
    ["P-256", "SHA-256", 64],
    ["P-384", "SHA-384", 96],
    ["P-521", "SHA-512", 132],
  ])("ECDSA %s generateKey, sign and verify round trip", async (curve, hash, bytes) => {
    expect(await probe("ecdsaRoundTrip", { curve, hash })).toEqual([
      true,
      false,
      ["verify"],
      ["sign"],
      bytes,
      true,
      false,
      true,
    ]);
  });

  it("JWK export and import round trips for HMAC, ECDSA, AES-GCM and Ed25519", async () => {
    expect(await probe("jwkRoundTrips")).toEqual([
      ["oct", "HS384", ["sign", "verify"], true, { name: "HMAC", hash: { name: "SHA-384" }, length: 1024 }],
      true,
      ["EC", "P-384", "string", ["sign"], true],
      true,
      true,
      ["oct", "A256GCM", 43],
      "secret",
      true,
    ]);
  });

  it("an HS256 and an ES256 JWT signed and verified in the isolate; Node verifies the ES256 one too", async () => {
    const out = (await probe("jwts")) as {
      hs: string;
      hsOk: boolean;
      hsTampered: boolean;
      es: string;
      esOk: boolean;
      esPublic: webcrypto.JsonWebKey;
    };
    expect([out.hsOk, out.hsTampered, out.esOk]).toEqual([true, false, true]);
    const [head, body, sig] = out.hs.split(".") as [string, string, string];
    const expected = (await import("node:crypto"))
      .createHmac("sha256", "a shared secret for HS256 tokens")
      .update(`${head}.${body}`)
      .digest("base64url");
    expect(sig).toBe(expected);
    const [eh, eb, es] = out.es.split(".") as [string, string, string];
    const pub = await webcrypto.subtle.importKey("jwk", out.esPublic, { name: "ECDSA", namedCurve: "P-256" }, false, [
      "verify",
    ]);
    const ok = await webcrypto.subtle.verify(
      { name: "ECDSA", hash: "SHA-256" },
      pub,
      Buffer.from(es, "base64url"),
      new TextEncoder().encode(`${eh}.${eb}`),
    );
    expect(ok).toBe(true);
  });

  it("RSASSA-PKCS1-v1_5 (spki) and RSA-PSS (jwk) verify signatures Node made", async () => {
    const subtle = webcrypto.subtle;
    const rs = await subtle.generateKey(
      { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
      true,
      ["sign", "verify"],
    );
    const ps = await subtle.generateKey(
      { name: "RSA-PSS", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
      true,
      ["sign", "verify"],
    );
    const data = "header.payload";
    const bytes = new TextEncoder().encode(data);
    const input = {
      spki: Buffer.from(await subtle.exportKey("spki", rs.publicKey)).toString("base64url"),
      jwk: await subtle.exportKey("jwk", ps.publicKey),
      data,
      pkcs1: Buffer.from(await subtle.sign("RSASSA-PKCS1-v1_5", rs.privateKey, bytes)).toString("base64url"),
      pss: Buffer.from(await subtle.sign({ name: "RSA-PSS", saltLength: 32 }, ps.privateKey, bytes)).toString(
        "base64url",
      ),
    };
    expect(await probe("rsaVerify", input)).toEqual([
      true,
      false,
      true,
      "RSASSA-PKCS1-v1_5",
      2048,
      [1, 0, 1],
      { name: "SHA-256" },
    ]);
  });

  it("ECDH and X25519 agree on a secret; deriveKey through HKDF and PBKDF2", async () => {
    expect(await probe("derivations")).toEqual([
      true,
      64,
      true,
      { name: "AES-GCM", length: 128 },
      16,
      { name: "HMAC", hash: { name: "SHA-256" }, length: 256 },
      32,
    ]);
  });

  it("wrapKey/unwrapKey with AES-GCM; AES-CBC, AES-CTR and RSA-OAEP round trips; keys do not clone", async () => {
    expect(await probe("wrapping")).toEqual([true, "cbc", "ctr", "oaep", "DataCloneError"]);
  });

  it("errors are DOMExceptions with the spec's names, and Hearth's caps say so", async () => {
    expect(await probe("errors")).toEqual({
      wrongUsage: "InvalidAccessError",
      wrongAlgorithm: "InvalidAccessError",
      wrongKeyType: "InvalidAccessError",
      notExtractable: "InvalidAccessError",
      badJwk: "DataError",
      badPoint: "DataError",
      badSpki: "DataError",
      unknownAlgorithm: "NotSupportedError",
      notForThisOp: "NotSupportedError",
      unknownHash: "NotSupportedError",
      badUsage: "SyntaxError",
      noUsages: "SyntaxError",
      tampered: "OperationError",
      overCap: [
        true,
        "QuotaExceededError",
        expect.stringMatching(
          new RegExp(
            `^crypto\\.subtle\\.encrypt: \\d+ bytes is over Hearth's limit of ${CRYPTO_LIMITS.maxBytesPerOp} per operation$`,
          ),
        ),
      ],
      tooManyIterations: [
        true,
        "NotSupportedError",
        "Pbkdf2 failed: iteration counts above 100000 are not supported (requested 100001)",
      ],
      bigRsa: "NotSupportedError",
      notAKey: "TypeError",
      illegal: "TypeError",
    });
  });

  it(`more than ${CRYPTO_LIMITS.maxInFlight} host operations at once wait their turn and all complete`, async () => {
    expect(await probe("parallel")).toBe(24);
  });
});

describe("host crypto is charged to the function", () => {
  it("an endless loop of ECDSA signatures on the host ends on the function's CPU limit", async () => {
    const { isolate, console: lines } = await isolateFor(
      `export default { async fetch() {
        const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
        for (let n = 1; ; n++) {
          await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, pair.privateKey, new Uint8Array(64));
          console.log(String(n));
        }
      } };`,
      { timeoutMs: 20_000, cpuMs: 50 },
    );
    try {
      const out = await isolate.invoke("flood", requestJson(), null);
      expect(out.ok ? "ok" : out.code).toBe("ERR_FUNCTION_CPU_TIME");
      // Measured: ≈ 50 signatures before the cut; ≈ 330 when only the calls back into the isolate were
      // charged and not the host's own time. Load lowers both, so the bound cannot fail spuriously.
      const signed = Number(lines.at(-1)?.message ?? 0);
      expect(signed).toBeGreaterThan(0);
      expect(signed).toBeLessThan(200);
    } finally {
      isolate.dispose();
    }
  });
});

/** Hono's JWT helper (hono/jwt, which calls crypto.subtle itself), bundled into a function as a deploy would. */
const HONO_JWT = `
import { sign, verify } from "hono/jwt";
export default {
  async fetch(request) {
    const { alg, privateKey, publicKey, token } = await request.json();
    if (token) return Response.json(await verify(token, publicKey, alg));
    const signed = await sign({ sub: "42", exp: 4102444800 }, privateKey, alg);
    return Response.json({ token: signed, payload: await verify(signed, publicKey, alg) });
  },
};`;

describe("hono/jwt inside the isolate", () => {
  let fn: FunctionIsolate;
  beforeAll(async () => {
    const bundled = await build({
      stdin: { contents: HONO_JWT, resolveDir: process.cwd(), sourcefile: "jwt.js" },
      bundle: true,
      write: false,
      format: "esm",
      platform: "neutral",
      mainFields: ["module", "main"],
      target: "es2024",
      logLevel: "silent",
    });
    fn = (await isolateFor(bundled.outputFiles[0]?.text ?? "", { timeoutMs: 10_000, cpuMs: 2_000 })).isolate;
  });
  afterAll(() => fn?.dispose());

  async function call(input: object): Promise<{ token: string; payload: unknown }> {
    const body = new TextEncoder().encode(JSON.stringify(input));
    const out = await fn.invoke("jwt", requestJson("http://fn.test/", "POST"), body);
    if (!out.ok) throw new Error(`${out.code} ${out.message} ${out.detail?.stack ?? ""}`);
    return JSON.parse(text(out.body));
  }

  it("HS256 with a string secret, checked by Node's hono too", async () => {
    const { token, payload } = await call({ alg: "HS256", privateKey: "s3cret", publicKey: "s3cret" });
    expect(payload).toEqual({ sub: "42", exp: 4102444800 });
    expect(await honoVerify(token, "s3cret", "HS256")).toEqual(payload);
  });

  it("ES256 with JWKs and RS256 with a PEM private key, checked by Node's hono too", async () => {
    const subtle = webcrypto.subtle;
    const ec = await subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
    const es = await call({
      alg: "ES256",
      privateKey: await subtle.exportKey("jwk", ec.privateKey),
      publicKey: await subtle.exportKey("jwk", ec.publicKey),
    });
    expect(es.payload).toEqual({ sub: "42", exp: 4102444800 });
    expect(await honoVerify(es.token, await subtle.exportKey("jwk", ec.publicKey), "ES256")).toEqual(es.payload);

    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const pem = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    const publicPem = publicKey.export({ type: "spki", format: "pem" }) as string;
    const rs = await call({ alg: "RS256", privateKey: pem, publicKey: publicPem });
    expect(rs.payload).toEqual({ sub: "42", exp: 4102444800 });
    expect(await honoVerify(rs.token, publicPem, "RS256")).toEqual(rs.payload);
    await expect(call({ alg: "RS256", publicKey: publicPem, token: `${rs.token.slice(0, -4)}AAAA` })).rejects.toThrow(
      /JwtTokenSignatureMismatched|signature/i,
    );
  });
});

/**
 * The host side on its own, fed what a tampered bootstrap could send: it must refuse by itself,
 * since the bootstrap's own checks are in reach of function code.
 */
describe("CryptoHost refuses what a tampered bootstrap could send", () => {
  let isolate: ivm.Isolate;
  let context: ivm.Context;
  let host: CryptoHost;
  const charged: bigint[] = [];

  beforeAll(async () => {
    isolate = new ivm.Isolate({ memoryLimit: 64 });
    context = await isolate.createContext();
    await context.eval(
      "globalThis.replies = {}; globalThis.done = (id, r) => { replies[id] = r.error ? r.error.name + ': ' + r.error.message : typeof r.value; };",
    );
  });
  afterAll(() => isolate.dispose());
  afterEach(() => host?.dispose());

  async function start(): Promise<CryptoHost> {
    await context.eval("globalThis.replies = {}");
    charged.length = 0;
    host = new CryptoHost({ timeoutMs: 1_000, onCall: () => {}, charge: (ns) => charged.push(ns) });
    host.bind(await context.global.get("done", { reference: true }));
    return host;
  }

  async function replies(count: number): Promise<Record<string, string>> {
    return vi.waitFor(
      async () => {
        const out = JSON.parse(await context.eval("JSON.stringify(replies)")) as Record<string, string>;
        if (Object.keys(out).length < count) throw new Error("waiting for replies");
        return out;
      },
      { timeout: 5_000, interval: 5 },
    );
  }

  const ecdsa = { name: "ECDSA", namedCurve: "P-256" };

  it("answers a valid request and charges the time it took", async () => {
    const h = await start();
    h.start(1, { op: "generateKey", algorithm: ecdsa, usages: ["sign", "verify"] });
    expect(await replies(1)).toEqual({ 1: "object" });
    expect(charged).toHaveLength(1);
    expect(charged[0]).toBeGreaterThan(0n);
    expect(h.pending).toBe(false);
  });

  it("refuses malformed requests, local-only algorithms and oversized data", async () => {
    const h = await start();
    const requests: unknown[] = [
      null,
      { op: "rm -rf", algorithm: ecdsa },
      { op: "sign", algorithm: { name: "HMAC" }, key: { jwk: {}, algorithm: ecdsa }, data: new ArrayBuffer(1) },
      {
        op: "sign",
        algorithm: ecdsa,
        key: { jwk: {}, algorithm: ecdsa },
        data: new ArrayBuffer(CRYPTO_LIMITS.maxBytesPerOp),
      },
      { op: "sign", algorithm: ecdsa, key: "not a key", data: new ArrayBuffer(1) },
      { op: "importKey", format: "raw", keyData: new ArrayBuffer(65), algorithm: ecdsa, usages: "verify" },
    ];
    // One at a time: each refusal holds an in-flight slot until it is answered.
    for (const [i, request] of requests.entries()) {
      h.start(i + 1, request);
      await replies(i + 1);
    }
    expect(await replies(requests.length)).toEqual({
      1: "OperationError: malformed request",
      2: "OperationError: malformed request",
      3: "NotSupportedError: unsupported algorithm",
      4: expect.stringMatching(
        new RegExp(
          `^QuotaExceededError: \\d+ bytes is over the limit of ${CRYPTO_LIMITS.maxBytesPerOp} per crypto operation$`,
        ),
      ),
      5: "DataError: malformed key",
      6: "OperationError: malformed request",
    });
  });

  it(`refuses more than ${CRYPTO_LIMITS.maxInFlight} operations in flight`, async () => {
    const h = await start();
    const over = CRYPTO_LIMITS.maxInFlight + 1;
    for (let id = 1; id <= over; id++) h.start(id, { op: "generateKey", algorithm: ecdsa, usages: ["sign"] });
    const out = await replies(over);
    expect(out[over]).toBe(`OperationError: Too many crypto operations in flight (limit ${CRYPTO_LIMITS.maxInFlight})`);
    expect(Object.values(out).filter((r) => r === "object")).toHaveLength(CRYPTO_LIMITS.maxInFlight);
  });

  it("refuses RSA keys over its size caps", async () => {
    const h = await start();
    const rsa = { name: "RSA-PSS", hash: "SHA-256", publicExponent: new Uint8Array([1, 0, 1]) };
    h.start(1, { op: "generateKey", algorithm: { ...rsa, modulusLength: 8192 }, usages: ["sign"] });
    expect(await replies(1)).toEqual({
      1: "NotSupportedError: RSA keys over 4096 bits are not supported here (got 8192)",
    });
  });
});
