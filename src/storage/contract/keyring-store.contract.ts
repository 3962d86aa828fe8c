import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { KeyringStore, KeyVersionRecord } from '../../kms/index.ts'

/** What each storage implementation hands the suite: a store over a fresh, empty database. */
export interface KeyringStoreHarness {
  readonly store: KeyringStore
  close (): Promise<void>
}

const rec = (keyId: string, version: number, fill: number, createdMs = 1_000 + version): KeyVersionRecord => ({
  keyId, version, sealed: Buffer.alloc(61, fill), state: 'enabled', createdMs,
})

/**
 * The {@link KeyringStore} contract (see kms/ports.ts). Every implementation calls this with its own opener;
 * `opts.skip` lets an implementation that needs an external server (PostgreSQL) skip when none is configured.
 */
export function keyringStoreContract (name: string, open: () => Promise<KeyringStoreHarness>, opts: { skip?: boolean } = {}): void {
  test(`${name} KeyringStore: listVersions() resolves [] for an unknown key`, opts, async (t) => {
    const h = await open()
    t.after(() => h.close())
    assert.deepEqual(await h.store.listVersions('nope'), [])
  })

  test(`${name} KeyringStore: inserted versions come back ascending, byte for byte`, opts, async (t) => {
    const h = await open()
    t.after(() => h.close())
    const v2 = { ...rec('master', 2, 0), sealed: Buffer.from([0, 1, 2, 0, 255, 0]) }
    assert.equal(await h.store.insertVersion(v2), true)
    assert.equal(await h.store.insertVersion(rec('master', 1, 7)), true)
    const got = await h.store.listVersions('master')
    assert.deepEqual(got.map(r => r.version), [1, 2])
    assert.deepEqual(got[0], rec('master', 1, 7))
    assert.deepEqual(got[1], v2)
    assert.ok(Buffer.isBuffer(got[1].sealed))
  })

  test(`${name} KeyringStore: inserting an existing version resolves false and keeps the original`, opts, async (t) => {
    const h = await open()
    t.after(() => h.close())
    assert.equal(await h.store.insertVersion(rec('master', 1, 1)), true)
    assert.equal(await h.store.insertVersion({ ...rec('master', 1, 2), state: 'disabled', createdMs: 9 }), false)
    assert.deepEqual(await h.store.listVersions('master'), [rec('master', 1, 1)])
  })

  test(`${name} KeyringStore: concurrent inserts of one version: exactly one wins`, opts, async (t) => {
    const h = await open()
    t.after(() => h.close())
    const results = await Promise.all([1, 2, 3, 4].map(fill => h.store.insertVersion(rec('master', 1, fill))))
    assert.equal(results.filter(Boolean).length, 1)
    const winner = results.indexOf(true) + 1
    assert.deepEqual(await h.store.listVersions('master'), [rec('master', 1, winner)])
  })

  test(`${name} KeyringStore: keys are isolated by key id`, opts, async (t) => {
    const h = await open()
    t.after(() => h.close())
    await h.store.insertVersion(rec('a', 1, 1))
    await h.store.insertVersion(rec('b', 1, 2))
    await h.store.insertVersion(rec('b', 2, 3))
    assert.deepEqual(await h.store.listVersions('a'), [rec('a', 1, 1)])
    assert.deepEqual((await h.store.listVersions('b')).map(r => r.version), [1, 2])
    assert.equal(await h.store.updateState('a', 2, 'disabled'), false)
    assert.equal((await h.store.listVersions('b'))[1].state, 'enabled')
  })

  test(`${name} KeyringStore: updateState() changes only that version's state`, opts, async (t) => {
    const h = await open()
    t.after(() => h.close())
    await h.store.insertVersion(rec('master', 1, 1))
    await h.store.insertVersion(rec('master', 2, 2))
    assert.equal(await h.store.updateState('master', 1, 'disabled'), true)
    assert.deepEqual(await h.store.listVersions('master'), [{ ...rec('master', 1, 1), state: 'disabled' }, rec('master', 2, 2)])
    assert.equal(await h.store.updateState('master', 1, 'disabled'), true, 'unchanged state still resolves true')
    assert.equal(await h.store.updateState('master', 1, 'enabled'), true)
    assert.deepEqual(await h.store.listVersions('master'), [rec('master', 1, 1), rec('master', 2, 2)])
  })

  test(`${name} KeyringStore: updateState() on an unknown version resolves false and creates nothing`, opts, async (t) => {
    const h = await open()
    t.after(() => h.close())
    assert.equal(await h.store.updateState('master', 1, 'disabled'), false)
    assert.deepEqual(await h.store.listVersions('master'), [])
  })

  test(`${name} KeyringStore: returned and inserted buffers are not shared with the store`, opts, async (t) => {
    const h = await open()
    t.after(() => h.close())
    const input = rec('master', 1, 5)
    await h.store.insertVersion(input)
    input.sealed.fill(0)
    const [first] = await h.store.listVersions('master')
    assert.deepEqual(first.sealed, Buffer.alloc(61, 5))
    first.sealed.fill(9)
    assert.deepEqual((await h.store.listVersions('master'))[0].sealed, Buffer.alloc(61, 5))
  })
}
