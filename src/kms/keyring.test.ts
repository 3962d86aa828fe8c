import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createDecipheriv, createHmac, randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { ManualClock, canonicalJson } from '../core/index.ts'
import { SqliteDb } from '../storage/sqlite/db.ts'
import { SqliteKeyringStore } from '../storage/sqlite/keyring-store.ts'
import { LocalKeyring } from './index.ts'
import type { KeyringUseEvent } from './index.ts'

const CTX = { tenant: 't1', purpose: 'ca-key' }
const FAILED = { code: 'ERR_KMS_DECRYPT_FAILED', message: 'ciphertext could not be decrypted' }

interface Setup { db: SqliteDb, store: SqliteKeyringStore, kek: Buffer, clock: ManualClock, events: KeyringUseEvent[], kr: LocalKeyring }

async function setup (t: TestContext, opts: { path?: string, kek?: Buffer, keyId?: string } = {}): Promise<Setup> {
  const db = new SqliteDb({ path: opts.path ?? ':memory:' })
  t.after(() => db.close())
  const store = new SqliteKeyringStore(db)
  const kek = opts.kek ?? randomBytes(32)
  const clock = new ManualClock()
  const events: KeyringUseEvent[] = []
  const kr = await LocalKeyring.open({ store, kek, clock, keyId: opts.keyId, onUse: e => events.push(e) })
  return { db, store, kek, clock, events, kr }
}

function tempDir (t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'tw-kms-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const versionOf = (blob: Buffer): number => blob.readUInt32BE(1)

test('first open creates an enabled version 1, stored sealed (61 bytes, format 0x03)', async (t) => {
  const { store, kr, clock } = await setup(t)
  assert.equal(kr.keyId, 'master')
  assert.equal(kr.currentVersion, 1)
  assert.deepEqual(kr.versions(), [{ version: 1, state: 'enabled', createdMs: clock.nowMs() }])
  const rows = await store.listVersions('master')
  assert.equal(rows.length, 1)
  assert.equal(rows[0].sealed.length, 61)
  assert.equal(rows[0].sealed[0], 0x03)
})

test('encrypt/decrypt round trip for empty, small, 1 KiB and 100 KiB payloads, with the documented layout', async (t) => {
  const { kr } = await setup(t)
  for (const size of [0, 1, 1024, 100 * 1024]) {
    const pt = randomBytes(size)
    const blob = kr.encrypt(pt, CTX)
    assert.equal(blob.length, 115 + size)
    assert.equal(blob[0], 0x01)
    assert.equal(versionOf(blob), 1)
    assert.equal(blob.readUInt16BE(5), 80)
    assert.deepEqual(kr.decrypt(blob, CTX), pt)
    if (size >= 16) assert.equal(blob.indexOf(pt.subarray(0, 16)), -1, 'payload is not in clear')
  }
  const a = kr.encrypt(Buffer.from('same'), CTX)
  const b = kr.encrypt(Buffer.from('same'), CTX)
  assert.notDeepEqual(a, b, 'fresh data key and IVs per call')
})

test('decrypt accepts a plain Uint8Array (as node:sqlite returns BLOBs) and any key order in the context', async (t) => {
  const { kr } = await setup(t)
  const blob = kr.encrypt(Buffer.from('hello'), { a: '1', b: '2' })
  const copy = new Uint8Array(blob.length + 4).subarray(2, 2 + blob.length)
  copy.set(blob)
  assert.equal(kr.decrypt(copy, { b: '2', a: '1' }).toString(), 'hello')
})

test('a context mismatch fails with fixed text: other value, extra key, missing key, case, empty', async (t) => {
  const { kr } = await setup(t)
  const blob = kr.encrypt(Buffer.from('secret'), CTX)
  const wrong: Array<Record<string, string>> = [
    { ...CTX, tenant: 't2' },
    { ...CTX, extra: '' },
    { tenant: 't1' },
    { tenant: 't1', Purpose: 'ca-key' },
    { ...CTX, purpose: 'CA-KEY' },
    {},
  ]
  for (const ctx of wrong) assert.throws(() => kr.decrypt(blob, ctx), FAILED, JSON.stringify(ctx))
  const unbound = kr.encrypt(Buffer.from('secret'), {})
  assert.throws(() => kr.decrypt(unbound, CTX), FAILED)
})

test('a context key named __proto__ (as JSON.parse produces) is bound like any other key', async (t) => {
  const { kr, events } = await setup(t)
  const ctx = JSON.parse('{"__proto__":"x","a":"1"}') as Record<string, string>
  const blob = kr.encrypt(Buffer.from('p'), ctx)
  assert.deepEqual(Object.keys(events[0].context), ['__proto__', 'a'])
  assert.equal(kr.decrypt(blob, JSON.parse('{"a":"1","__proto__":"x"}') as Record<string, string>).toString(), 'p')
  assert.throws(() => kr.decrypt(blob, { a: '1' }), FAILED)
  assert.throws(() => kr.decrypt(blob, JSON.parse('{"__proto__":"y","a":"1"}') as Record<string, string>), FAILED)
})

test('a malformed context is refused with ERR_KMS_CONTEXT_INVALID by every operation', async (t) => {
  const { kr, events } = await setup(t)
  const blob = kr.encrypt(Buffer.from('x'), CTX)
  const dk = kr.generateDataKey(CTX)
  events.length = 0
  const bad: unknown[] = [
    null, undefined, 'a=b', ['a'], new Map([['a', 'b']]), new (class C { a = 'b' })(),
    { a: 1 }, { a: null }, { a: undefined }, { a: { b: 'c' } }, { a: ['b'] }, { [Symbol('s')]: 'x' },
  ]
  for (const ctx of bad) {
    const c = ctx as Record<string, string>
    for (const op of [() => kr.encrypt(Buffer.from('x'), c), () => kr.decrypt(blob, c), () => kr.generateDataKey(c),
      () => kr.decryptDataKey(dk.ciphertextBlob, c), () => kr.reEncrypt(blob, c)]) {
      assert.throws(op, { code: 'ERR_KMS_CONTEXT_INVALID' }, String(ctx))
    }
  }
  assert.equal(events.length, 0, 'refused operations are not reported as uses')
})

test('flipping any bit pattern in any byte of an envelope blob fails decryption', async (t) => {
  const { kr } = await setup(t)
  const blob = kr.encrypt(Buffer.from('0123456789abcdef'), CTX)
  assert.deepEqual(kr.decrypt(blob, CTX), Buffer.from('0123456789abcdef'))
  for (let i = 0; i < blob.length; i++) {
    for (const mask of [0x01, 0x80, 0xff]) {
      const bad = Buffer.from(blob)
      bad[i] ^= mask
      assert.throws(() => kr.decrypt(bad, CTX), FAILED, `byte ${i} ^ ${mask}`)
      assert.throws(() => kr.reEncrypt(bad, CTX), FAILED, `reEncrypt byte ${i} ^ ${mask}`)
    }
  }
})

test('every truncation of an envelope blob, and an appended byte, fail decryption', async (t) => {
  const { kr } = await setup(t)
  const blob = kr.encrypt(Buffer.from('0123456789abcdef'), CTX)
  for (let n = 0; n < blob.length; n++) assert.throws(() => kr.decrypt(blob.subarray(0, n), CTX), FAILED, `length ${n}`)
  assert.throws(() => kr.decrypt(Buffer.concat([blob, Buffer.from([0])]), CTX), FAILED)
})

test('a blob from another keyring, or another key id in the same store, does not decrypt', async (t) => {
  const a = await setup(t)
  const b = await setup(t)
  const blob = a.kr.encrypt(Buffer.from('x'), CTX)
  assert.throws(() => b.kr.decrypt(blob, CTX), FAILED)
  const other = await LocalKeyring.open({ store: a.store, kek: a.kek, clock: a.clock, keyId: 'secrets' })
  assert.throws(() => other.decrypt(blob, CTX), FAILED)
})

test('generateDataKey returns a 32-byte key whose blob unwraps only with the same context', async (t) => {
  const { kr } = await setup(t)
  const dk = kr.generateDataKey(CTX)
  assert.equal(dk.plaintext.length, 32)
  assert.equal(dk.ciphertextBlob.length, 85)
  assert.equal(dk.ciphertextBlob[0], 0x02)
  assert.equal(dk.ciphertextBlob.indexOf(dk.plaintext), -1)
  const before = Buffer.from(dk.plaintext)
  kr.encrypt(Buffer.from('x'), CTX) // the internal scratch key is zeroed after use; the returned key is not it
  assert.deepEqual(dk.plaintext, before)
  assert.deepEqual(kr.decryptDataKey(dk.ciphertextBlob, CTX), dk.plaintext)
  assert.throws(() => kr.decryptDataKey(dk.ciphertextBlob, { ...CTX, tenant: 'x' }), FAILED)
  assert.notDeepEqual(kr.generateDataKey(CTX).plaintext, dk.plaintext)
  for (let i = 0; i < dk.ciphertextBlob.length; i++) {
    const bad = Buffer.from(dk.ciphertextBlob)
    bad[i] ^= 0x01
    assert.throws(() => kr.decryptDataKey(bad, CTX), FAILED, `byte ${i}`)
  }
  for (let n = 0; n < dk.ciphertextBlob.length; n++) assert.throws(() => kr.decryptDataKey(dk.ciphertextBlob.subarray(0, n), CTX), FAILED)
})

test('envelope and data-key blobs cannot be used in place of each other', async (t) => {
  const { kr } = await setup(t)
  const dk = kr.generateDataKey(CTX)
  const env = kr.encrypt(Buffer.alloc(32), CTX)
  assert.throws(() => kr.decrypt(dk.ciphertextBlob, CTX), FAILED)
  assert.throws(() => kr.decryptDataKey(env, CTX), FAILED)
  // Same wrapped-key bytes under the other format byte: the wrap AAD names the format and purpose.
  const forged = Buffer.concat([Buffer.from([0x02]), env.subarray(1, 5), env.subarray(7, 87)])
  assert.throws(() => kr.decryptDataKey(forged, CTX), FAILED)
})

test('rotation: new blobs carry the new version, old blobs still decrypt', async (t) => {
  const { kr, store } = await setup(t)
  const old = kr.encrypt(Buffer.from('v1 data'), CTX)
  const oldDk = kr.generateDataKey(CTX)
  assert.equal(await kr.rotate(), 2)
  assert.equal(kr.currentVersion, 2)
  const fresh = kr.encrypt(Buffer.from('v2 data'), CTX)
  assert.equal(versionOf(old), 1)
  assert.equal(versionOf(fresh), 2)
  assert.equal(versionOf(kr.generateDataKey(CTX).ciphertextBlob), 2)
  assert.equal(kr.decrypt(old, CTX).toString(), 'v1 data')
  assert.equal(kr.decrypt(fresh, CTX).toString(), 'v2 data')
  assert.deepEqual(kr.decryptDataKey(oldDk.ciphertextBlob, CTX), oldDk.plaintext)
  assert.equal(await kr.rotate(), 3)
  assert.deepEqual((await store.listVersions('master')).map(r => [r.version, r.state]), [[1, 'enabled'], [2, 'enabled'], [3, 'enabled']])
  // A blob naming a version that does not exist yet is indistinguishable from tampering.
  const future = Buffer.from(fresh)
  future.writeUInt32BE(4, 1)
  assert.throws(() => kr.decrypt(future, CTX), FAILED)
})

test('reEncrypt moves a blob to the current version without changing its payload ciphertext', async (t) => {
  const { kr, events } = await setup(t)
  const old = kr.encrypt(Buffer.from('keep me'), CTX)
  const oldDk = kr.generateDataKey(CTX)
  await kr.rotate()
  events.length = 0
  const moved = kr.reEncrypt(old, CTX)
  assert.equal(versionOf(moved), 2)
  assert.equal(moved.length, old.length)
  assert.deepEqual(moved.subarray(87), old.subarray(87), 'iv, tag and ciphertext kept')
  assert.notDeepEqual(moved.subarray(7, 87), old.subarray(7, 87), 'data key rewrapped')
  assert.equal(kr.decrypt(moved, CTX).toString(), 'keep me')
  assert.throws(() => kr.reEncrypt(old, { ...CTX, tenant: 'x' }), FAILED)
  const movedDk = kr.reEncrypt(oldDk.ciphertextBlob, CTX)
  assert.equal(versionOf(movedDk), 2)
  assert.equal(movedDk[0], 0x02)
  assert.deepEqual(kr.decryptDataKey(movedDk, CTX), oldDk.plaintext)
  assert.deepEqual(events.map(e => [e.operation, e.version]), [['reEncrypt', 2], ['decrypt', 2], ['reEncrypt', 2], ['decryptDataKey', 2]])
  // A tampered payload is refused rather than laundered into a fresh-looking blob.
  const bad = Buffer.from(old)
  bad[bad.length - 1] ^= 1
  assert.throws(() => kr.reEncrypt(bad, CTX), FAILED)
})

test('reopening from the same SQLite file with the same KEK decrypts old blobs of every version', async (t) => {
  const path = join(tempDir(t), 'tw.db')
  const kek = randomBytes(32)
  const db1 = new SqliteDb({ path })
  const kr1 = await LocalKeyring.open({ store: new SqliteKeyringStore(db1), kek, clock: new ManualClock() })
  const b1 = kr1.encrypt(Buffer.from('one'), CTX)
  await kr1.rotate()
  const b2 = kr1.encrypt(Buffer.from('two'), CTX)
  const dk = kr1.generateDataKey(CTX)
  db1.close()
  const { kr } = await setup(t, { path, kek })
  assert.equal(kr.currentVersion, 2)
  assert.equal(kr.decrypt(b1, CTX).toString(), 'one')
  assert.equal(kr.decrypt(b2, CTX).toString(), 'two')
  assert.deepEqual(kr.decryptDataKey(dk.ciphertextBlob, CTX), dk.plaintext)
})

test('a wrong KEK refuses to open, says the master key could not be unsealed, and writes nothing', async (t) => {
  const path = join(tempDir(t), 'tw.db')
  const kek = randomBytes(32)
  const db1 = new SqliteDb({ path })
  await LocalKeyring.open({ store: new SqliteKeyringStore(db1), kek, clock: new ManualClock() })
  db1.close()
  const db = new SqliteDb({ path })
  t.after(() => db.close())
  const store = new SqliteKeyringStore(db)
  const wrong = randomBytes(32)
  await assert.rejects(LocalKeyring.open({ store, kek: wrong, clock: new ManualClock() }), (err: unknown) => {
    assert.ok(err instanceof Error)
    assert.equal((err as Error & { code: string }).code, 'ERR_KMS_MASTER_KEY_INVALID')
    assert.match(err.message, /master key could not be unsealed/)
    for (const k of [wrong, kek]) {
      for (const enc of ['hex', 'base64'] as const) assert.ok(!err.message.includes(k.toString(enc)))
    }
    return true
  })
  assert.equal((await store.listVersions('master')).length, 1)
})

test('a KEK of the wrong size and a malformed key id are refused before touching the store', async (t) => {
  const db = new SqliteDb({ path: ':memory:' })
  t.after(() => db.close())
  const store = new SqliteKeyringStore(db)
  for (const kek of [Buffer.alloc(0), randomBytes(16), randomBytes(31), randomBytes(33)]) {
    await assert.rejects(LocalKeyring.open({ store, kek, clock: new ManualClock() }), { code: 'ERR_KMS_MASTER_KEY_INVALID' })
  }
  for (const keyId of ['', 'a b', '../x', 'x'.repeat(129)]) {
    await assert.rejects(LocalKeyring.open({ store, kek: randomBytes(32), clock: new ManualClock(), keyId }), { code: 'ERR_CONFIG_INVALID' })
  }
  assert.equal(db.get<{ n: number }>('SELECT COUNT(*) AS n FROM kms_keys')?.n, 0)
})

test('a sealed version moved to another version number or key id does not unseal (AAD binds both)', async (t) => {
  const { db, store, kek } = await setup(t)
  const [v1] = await store.listVersions('master')
  await store.insertVersion({ ...v1, keyId: 'copy' })
  await assert.rejects(LocalKeyring.open({ store, kek, clock: new ManualClock(), keyId: 'copy' }), { code: 'ERR_KMS_MASTER_KEY_INVALID' })
  await store.insertVersion({ ...v1, version: 2 })
  const kr = LocalKeyring.open({ store, kek, clock: new ManualClock() })
  await assert.rejects(kr, { code: 'ERR_KMS_MASTER_KEY_INVALID' })
  db.run("UPDATE kms_keys SET sealed = x'0300' WHERE version = 2")
  await assert.rejects(LocalKeyring.open({ store, kek, clock: new ManualClock() }), { code: 'ERR_STORAGE_CORRUPT' })
})

/** Follows the TSDoc format spec independently of the implementation. */
function specUnseal (kek: Buffer, keyId: string, version: number, sealed: Buffer): Buffer {
  const d = createDecipheriv('aes-256-gcm', kek, sealed.subarray(1, 13), { authTagLength: 16 })
  d.setAAD(Buffer.from(canonicalJson({ f: 3, k: keyId, p: 'thingward.kms.master-key', v: version })))
  d.setAuthTag(sealed.subarray(13, 29))
  return Buffer.concat([d.update(sealed.subarray(29)), d.final()])
}

function specUnwrap (master: Buffer, wrapped: Buffer, aad: object): Buffer {
  const wrapKey = createHmac('sha256', master)
    .update(Buffer.concat([Buffer.from([0, 0, 0, 1]), Buffer.from('thingward.kms.wrap'), Buffer.from([0]), wrapped.subarray(0, 32), Buffer.from([0, 0, 1, 0])]))
    .digest()
  const d = createDecipheriv('aes-256-gcm', wrapKey, Buffer.alloc(12), { authTagLength: 16 })
  d.setAAD(Buffer.from(canonicalJson(aad)))
  d.setAuthTag(wrapped.subarray(32, 48))
  return Buffer.concat([d.update(wrapped.subarray(48, 80)), d.final()])
}

test('nothing secret is in the SQLite files: not the master key, the KEK, data keys or plaintext; blobs follow the spec', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'tw.db')
  const kek = randomBytes(32)
  const db = new SqliteDb({ path })
  const store = new SqliteKeyringStore(db)
  const kr = await LocalKeyring.open({ store, kek, clock: new ManualClock() })
  await kr.rotate()
  const dk = kr.generateDataKey(CTX)
  const secret = Buffer.from('top secret payload, 32+ bytes long!!')
  const blob = kr.encrypt(secret, CTX)
  // Store the blobs in the same database too, as callers will.
  db.exec('CREATE TABLE t (b BLOB)')
  db.run('INSERT INTO t (b) VALUES (?)', blob)
  db.run('INSERT INTO t (b) VALUES (?)', dk.ciphertextBlob)
  const rows = await store.listVersions('master')
  const files = (): Buffer => Buffer.concat(readdirSync(dir).map(f => readFileSync(join(dir, f))))
  const beforeClose = files()
  db.close()
  const disk = Buffer.concat([beforeClose, files()])

  assert.deepEqual(rows.map(r => [r.sealed.length, r.sealed[0]]), [[61, 0x03], [61, 0x03]])
  const masters = rows.map(r => specUnseal(kek, 'master', r.version, r.sealed))
  assert.notDeepEqual(masters[0], masters[1])
  for (const [i, m] of masters.entries()) {
    assert.equal(m.length, 32)
    assert.equal(disk.indexOf(m), -1, `master key version ${i + 1} is not on disk in clear`)
    for (let w = 0; w + 32 <= rows[i].sealed.length; w++) assert.notDeepEqual(rows[i].sealed.subarray(w, w + 32), m)
  }
  assert.equal(disk.indexOf(kek), -1, 'KEK is not on disk')
  assert.equal(disk.indexOf(dk.plaintext), -1, 'data key is not on disk')
  assert.equal(disk.indexOf(secret.subarray(0, 16)), -1, 'plaintext is not on disk')
  assert.notEqual(disk.indexOf(blob), -1, 'the ciphertext is (sanity check of the search)')

  // The unsealed version-2 key, used per the documented format, unwraps the data key and the envelope.
  const m2 = masters[1]
  assert.equal(versionOf(dk.ciphertextBlob), 2)
  assert.deepEqual(specUnwrap(m2, dk.ciphertextBlob.subarray(5), { c: CTX, f: 2, k: 'master', p: 'thingward.kms.data-key', v: 2 }), dk.plaintext)
  const dek = specUnwrap(m2, blob.subarray(7, 87), { c: CTX, f: 1, k: 'master', p: 'thingward.kms.dek', v: 2 })
  const d = createDecipheriv('aes-256-gcm', dek, blob.subarray(87, 99), { authTagLength: 16 })
  d.setAAD(Buffer.from(canonicalJson({ c: CTX, f: 1, k: 'master', p: 'thingward.kms.payload' })))
  d.setAuthTag(blob.subarray(99, 115))
  assert.deepEqual(Buffer.concat([d.update(blob.subarray(115)), d.final()]), secret)
})

test('onUse is called once per successful operation with the right fields', async (t) => {
  const { kr, events } = await setup(t)
  assert.equal(events.length, 0, 'creating version 1 is not a use')
  const ctx: Record<string, string> = { a: '1' }
  const blob = kr.encrypt(Buffer.from('x'), ctx)
  ctx.a = 'mutated'
  kr.decrypt(blob, { a: '1' })
  const dk = kr.generateDataKey({ b: '2' })
  kr.decryptDataKey(dk.ciphertextBlob, { b: '2' })
  await kr.rotate()
  kr.reEncrypt(blob, { a: '1' })
  await kr.disableVersion(1)
  await kr.enableVersion(1)
  assert.throws(() => kr.decrypt(blob, { a: '2' }), FAILED)
  assert.deepEqual(events, [
    { operation: 'encrypt', keyId: 'master', version: 1, context: { a: '1' } },
    { operation: 'decrypt', keyId: 'master', version: 1, context: { a: '1' } },
    { operation: 'generateDataKey', keyId: 'master', version: 1, context: { b: '2' } },
    { operation: 'decryptDataKey', keyId: 'master', version: 1, context: { b: '2' } },
    { operation: 'rotate', keyId: 'master', version: 2, context: {} },
    { operation: 'reEncrypt', keyId: 'master', version: 2, context: { a: '1' } },
    { operation: 'disableVersion', keyId: 'master', version: 1, context: {} },
    { operation: 'enableVersion', keyId: 'master', version: 1, context: {} },
  ])
  assert.ok(events.every(e => Object.isFrozen(e.context)))
})

test('an onUse hook that throws fails the operation closed', async (t) => {
  const db = new SqliteDb({ path: ':memory:' })
  t.after(() => db.close())
  const kr = await LocalKeyring.open({
    store: new SqliteKeyringStore(db), kek: randomBytes(32), clock: new ManualClock(),
    onUse: () => { throw new Error('audit down') },
  })
  assert.throws(() => kr.encrypt(Buffer.from('x'), {}), /audit down/)
})

test('a disabled version refuses decrypt and reEncrypt with ERR_KMS_KEY_DISABLED, persistently, until enabled', async (t) => {
  const path = join(tempDir(t), 'tw.db')
  const { kr, kek } = await setup(t, { path })
  const old = kr.encrypt(Buffer.from('x'), CTX)
  const oldDk = kr.generateDataKey(CTX)
  await kr.rotate()
  await kr.disableVersion(1)
  const DISABLED = { code: 'ERR_KMS_KEY_DISABLED' }
  assert.throws(() => kr.decrypt(old, CTX), DISABLED)
  assert.throws(() => kr.decryptDataKey(oldDk.ciphertextBlob, CTX), DISABLED)
  assert.throws(() => kr.reEncrypt(old, CTX), DISABLED)
  assert.equal(kr.decrypt(kr.encrypt(Buffer.from('y'), CTX), CTX).toString(), 'y', 'current version unaffected')

  const { kr: reopened } = await setup(t, { path, kek })
  assert.deepEqual(reopened.versions().map(v => v.state), ['disabled', 'enabled'])
  assert.throws(() => reopened.decrypt(old, CTX), DISABLED)

  await kr.enableVersion(1)
  assert.equal(kr.decrypt(old, CTX).toString(), 'x')

  await kr.disableVersion(2)
  assert.throws(() => kr.encrypt(Buffer.from('z'), CTX), DISABLED, 'no silent fallback to an older version')
  assert.throws(() => kr.generateDataKey(CTX), DISABLED)
  assert.equal(await kr.rotate(), 3)
  assert.equal(versionOf(kr.encrypt(Buffer.from('z'), CTX)), 3)

  await assert.rejects(kr.disableVersion(9), { code: 'ERR_KMS_KEY_NOT_FOUND' })
})

test('two keyrings on one database: first open agrees on version 1; rotation is seen after refresh()', async (t) => {
  const db = new SqliteDb({ path: ':memory:' })
  t.after(() => db.close())
  const store = new SqliteKeyringStore(db)
  const kek = randomBytes(32)
  const [a, b] = await Promise.all([1, 2].map(async () => LocalKeyring.open({ store, kek, clock: new ManualClock() })))
  assert.equal((await store.listVersions('master')).length, 1)
  assert.equal(b.decrypt(a.encrypt(Buffer.from('x'), CTX), CTX).toString(), 'x')

  assert.equal(await a.rotate(), 2)
  const fromA = a.encrypt(Buffer.from('v2'), CTX)
  assert.throws(() => b.decrypt(fromA, CTX), FAILED, 'b has not seen version 2 yet')
  assert.equal(await b.rotate(), 3, 'b lost the race for version 2, reloaded and stored 3')
  assert.equal(b.decrypt(fromA, CTX).toString(), 'v2')
  await a.disableVersion(1)
  await b.refresh()
  assert.equal(b.currentVersion, 3)
  assert.deepEqual(b.versions().map(v => v.state), ['disabled', 'enabled', 'enabled'])
})
