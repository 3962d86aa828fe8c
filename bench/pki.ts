/**
 * PKI benchmarks. Run: `node bench/pki.ts` (prints figures). Every measurement is also exported so bench/issue.ts
 * can import and combine them. Setup (CA creation, CSR generation, request encoding) is never timed.
 *
 * - benchCsrIssuance: CSR PEM → parse + self-signature verify + key policy + template issue (+ PEM, certificateId).
 * - benchCsrIssuanceParallel: the same split over worker threads (the issuer is synchronous and CPU-bound).
 * - benchGeneratedKeys: generateKeyPair (incl. both PEM exports) + issueForPublicKey.
 * - benchCrl: buildCrl for N entries (encode + sign).
 * - benchOcsp: OcspResponder.respond for a SHA-1 CertID request with a nonce (parse + lookup + sign), no HTTP.
 */
import { createHash } from 'node:crypto'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
import { CertificateIssuer, OcspResponder, buildCrl, createCaHierarchy, createCsr, generateKeyPair } from '../src/pki/index.ts'
import type { CaAlgorithm, CaMaterial, CrlEntry, KeyAlgorithm } from '../src/pki/index.ts'

export interface BenchResult {
  readonly name: string
  readonly count: number
  readonly ms: number
  readonly perSecond: number
}

const result = (name: string, count: number, ms: number): BenchResult => ({ name, count, ms: Math.round(ms), perSecond: Math.round(count / ms * 1000) })

function issuerFor (issuing: CaMaterial): CertificateIssuer {
  return new CertificateIssuer({
    caCertPem: issuing.certPem,
    caPrivateKeyPkcs8Der: issuing.privateKeyPkcs8Der,
    crlUrl: 'https://pki.example.com/crl/issuing.crl',
    ocspUrl: 'https://pki.example.com/ocsp',
  })
}

/** Pre-generates `count` CSRs (untimed): each a fresh key, CN=dev-<i>. */
export function makeCsrs (count: number, keyAlgorithm: KeyAlgorithm = 'EC-P256'): string[] {
  const csrs: string[] = []
  for (let i = 0; i < count; i++) csrs.push(createCsr({ ...generateKeyPair(keyAlgorithm), commonName: `dev-${i}` }))
  return csrs
}

export function benchCsrIssuance (opts: { count?: number, caAlgorithm?: CaAlgorithm, keyAlgorithm?: KeyAlgorithm, csrs?: string[] } = {}): BenchResult {
  const nowMs = Date.now()
  const { issuing } = createCaHierarchy({ algorithm: opts.caAlgorithm ?? 'EC-P256', nowMs })
  const issuer = issuerFor(issuing)
  const csrs = opts.csrs ?? makeCsrs(opts.count ?? 10_000, opts.keyAlgorithm)
  issuer.issueFromCsr(csrs[0], { nowMs }) // warm-up
  const t0 = performance.now()
  for (const csr of csrs) issuer.issueFromCsr(csr, { nowMs })
  return result(`CSR → certificate (${opts.caAlgorithm ?? 'EC-P256'} CA, ${opts.keyAlgorithm ?? 'EC-P256'} keys, 1 thread)`, csrs.length, performance.now() - t0)
}

interface WorkerJob { issuing: CaMaterial, csrs: string[], nowMs: number }

/** CSR path over `workers` threads; wall-clock time from start signal to the last worker's answer. */
export async function benchCsrIssuanceParallel (opts: { count?: number, workers?: number, caAlgorithm?: CaAlgorithm } = {}): Promise<BenchResult> {
  const workers = opts.workers ?? 2
  const count = opts.count ?? 20_000
  const nowMs = Date.now()
  const { issuing } = createCaHierarchy({ algorithm: opts.caAlgorithm ?? 'EC-P256', nowMs })
  const csrs = makeCsrs(count)
  const per = Math.ceil(count / workers)
  const threads = Array.from({ length: workers }, (_, i) => new Worker(new URL(import.meta.url), {
    workerData: { issuing, csrs: csrs.slice(i * per, (i + 1) * per), nowMs } satisfies WorkerJob,
  }))
  // Each worker builds its issuer, then reports 'ready'; we time from 'go' to the last 'done'.
  await Promise.all(threads.map((w) => new Promise<void>((resolve) => w.once('message', () => resolve()))))
  const t0 = performance.now()
  const done = threads.map((w) => new Promise<number>((resolve, reject) => {
    w.once('message', (n: number) => resolve(n))
    w.once('error', reject)
  }))
  for (const w of threads) w.postMessage('go')
  const issued = (await Promise.all(done)).reduce((a, b) => a + b, 0)
  const ms = performance.now() - t0
  await Promise.all(threads.map((w) => w.terminate()))
  return result(`CSR → certificate (${opts.caAlgorithm ?? 'EC-P256'} CA, ${workers} worker threads)`, issued, ms)
}

function runWorker (): void {
  const job = workerData as WorkerJob
  const issuer = issuerFor({ ...job.issuing, privateKeyPkcs8Der: Buffer.from(job.issuing.privateKeyPkcs8Der) })
  issuer.issueFromCsr(job.csrs[0], { nowMs: job.nowMs })
  parentPort?.postMessage('ready')
  parentPort?.once('message', () => {
    for (const csr of job.csrs) issuer.issueFromCsr(csr, { nowMs: job.nowMs })
    parentPort?.postMessage(job.csrs.length)
  })
}

export function benchGeneratedKeys (opts: { count?: number, caAlgorithm?: CaAlgorithm, keyAlgorithm?: KeyAlgorithm } = {}): BenchResult {
  const nowMs = Date.now()
  const { issuing } = createCaHierarchy({ algorithm: opts.caAlgorithm ?? 'EC-P256', nowMs })
  const issuer = issuerFor(issuing)
  const count = opts.count ?? 10_000
  const alg = opts.keyAlgorithm ?? 'EC-P256'
  const t0 = performance.now()
  for (let i = 0; i < count; i++) {
    const kp = generateKeyPair(alg)
    issuer.issueForPublicKey(kp.publicKey, { nowMs, commonName: `dev-${i}` })
  }
  return result(`generated ${alg} key + certificate (1 thread)`, count, performance.now() - t0)
}

export function benchCrl (opts: { entries?: number, caAlgorithm?: CaAlgorithm } = {}): BenchResult & { bytes: number } {
  const nowMs = Date.now()
  const { issuing } = createCaHierarchy({ algorithm: opts.caAlgorithm ?? 'EC-P256', nowMs })
  const n = opts.entries ?? 100_000
  const entries: CrlEntry[] = []
  for (let i = 0; i < n; i++) entries.push({ serialHex: (0x40000000 + i).toString(16) + '0123456789abcdef01234567', revokedAtMs: nowMs - i * 1000, reasonCode: i % 4 === 0 ? 1 : undefined })
  const t0 = performance.now()
  const crl = buildCrl({ issuerCertPem: issuing.certPem, issuerPrivateKeyPkcs8Der: issuing.privateKeyPkcs8Der, entries, thisUpdateMs: nowMs, nextUpdateMs: nowMs + 86_400_000, crlNumber: 1n })
  return { ...result(`CRL build, ${n} entries`, n, performance.now() - t0), bytes: crl.der.length }
}

/** DER OCSPRequest with one SHA-1 CertID for `serial` under `issuing`, plus a 16-octet nonce (what `openssl ocsp` sends). */
function ocspRequest (issuing: CaMaterial, serial: Buffer): Buffer {
  const tlv = (tag: number, ...parts: Buffer[]): Buffer => {
    const body = Buffer.concat(parts)
    const len = body.length < 0x80 ? Buffer.from([body.length]) : body.length < 0x100 ? Buffer.from([0x81, body.length]) : Buffer.from([0x82, body.length >> 8, body.length & 0xff])
    return Buffer.concat([Buffer.from([tag]), len, body])
  }
  const x509 = issuerNameAndKey(issuing.certDer)
  const sha1 = (b: Buffer): Buffer => createHash('sha1').update(b).digest()
  const certId = tlv(0x30, Buffer.from('300906052b0e03021a0500', 'hex'), tlv(0x04, sha1(x509.name)), tlv(0x04, sha1(x509.keyBits)), tlv(0x02, serial))
  const nonce = tlv(0x30, Buffer.from('06092b0601050507300102', 'hex'), tlv(0x04, tlv(0x04, Buffer.alloc(16, 7))))
  return tlv(0x30, tlv(0x30, tlv(0x30, tlv(0x30, certId)), tlv(0xa2, tlv(0x30, nonce))))
}

/** Subject Name DER and subjectPublicKey bits of a certificate, located with a minimal walk (bench-only helper). */
function issuerNameAndKey (der: Buffer): { name: Buffer, keyBits: Buffer } {
  const read = (off: number): { start: number, vs: number, end: number } => {
    let len = der[off + 1]
    let vs = off + 2
    if (len & 0x80) { const n = len & 0x7f; len = 0; for (let i = 0; i < n; i++) len = len * 256 + der[vs + i]; vs += n }
    return { start: off, vs, end: vs + len }
  }
  const tbs = read(read(0).vs)
  let off = tbs.vs
  const fields: Array<{ start: number, vs: number, end: number }> = []
  while (off < tbs.end) { const f = read(off); fields.push(f); off = f.end }
  const subject = fields[5]
  const spki = read(fields[6].vs)
  const bits = read(spki.end)
  return { name: der.subarray(subject.start, subject.end), keyBits: der.subarray(bits.vs + 1, bits.end) }
}

export function benchOcsp (opts: { count?: number, caAlgorithm?: CaAlgorithm } = {}): BenchResult {
  const nowMs = Date.now()
  const { issuing } = createCaHierarchy({ algorithm: opts.caAlgorithm ?? 'EC-P256', nowMs })
  const revoked = new Set<string>()
  const responder = new OcspResponder({
    issuerCertPem: issuing.certPem,
    issuerPrivateKeyPkcs8Der: issuing.privateKeyPkcs8Der,
    lookup: (serialHex) => (revoked.has(serialHex) ? { status: 'revoked', revokedAtMs: nowMs, reasonCode: 1 } : { status: 'good' }),
  })
  const count = opts.count ?? 10_000
  const requests: Buffer[] = []
  for (let i = 0; i < 256; i++) {
    const serial = Buffer.alloc(16, i)
    serial[0] = 0x40 | (i & 0x3f)
    if (i % 8 === 0) revoked.add(serial.toString('hex'))
    requests.push(ocspRequest(issuing, serial))
  }
  if (!responder.respond(requests[0], nowMs).subarray(0, 10).includes(Buffer.from('0a0100', 'hex'))) throw new Error('benchmark request was not answered successfully')
  const t0 = performance.now()
  for (let i = 0; i < count; i++) responder.respond(requests[i & 255], nowMs)
  return result(`OCSP respond (${opts.caAlgorithm ?? 'EC-P256'} CA, parse + sign, no HTTP)`, count, performance.now() - t0)
}

function print (r: BenchResult & { bytes?: number }): void {
  const extra = r.bytes === undefined ? '' : `, ${(r.bytes / 1e6).toFixed(1)} MB`
  console.log(`${r.name.padEnd(62)} ${String(r.perSecond).padStart(8)} /s   (${r.count} in ${r.ms} ms${extra})`)
}

if (!isMainThread) {
  runWorker()
} else if (import.meta.main) {
  const quick = process.argv.includes('--quick')
  print(benchCsrIssuance({ count: quick ? 3000 : 20_000 }))
  print(await benchCsrIssuanceParallel({ count: quick ? 4000 : 20_000, workers: 2 }))
  const gen = benchGeneratedKeys({ count: quick ? 5000 : 50_000 })
  print(gen)
  if (!quick) console.log(`  → 50,000 generated-key devices in ${(gen.ms / 1000).toFixed(1)} s (target ≤ 30 s)`)
  print(benchCrl({ entries: 100_000 }))
  print(benchOcsp({ count: quick ? 3000 : 20_000 }))
}
