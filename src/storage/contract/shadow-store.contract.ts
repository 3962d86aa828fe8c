import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { PayloadSchemaStorage, ShadowStorage, StoredPayloadSchema, StoredShadow } from '../../shadow/index.ts'

/** What each storage implementation hands the suite: stores over a fresh, empty database. */
export interface ShadowStoreHarness {
  readonly shadows: ShadowStorage
  readonly schemas: PayloadSchemaStorage
  /** Registers a thing the way the registry would (shadows belong to registered things). */
  createThing (name: string): Promise<void>
  /** Audit events committed through the units' appenders so far. */
  auditCount (): Promise<number>
  close (): Promise<void>
}

const row = (thingName: string, shadowName: string, version: number, fill: number): StoredShadow => ({
  thingName, shadowName, version, sealed: Buffer.from([fill, 0, 255, fill]), updatedMs: 1_000 + version,
})

const schema = (name: string, version = 1): StoredPayloadSchema => ({
  name, topicFilter: `building/+/${name}`, schemaJson: '{"type":"object"}', description: `d-${name}`, version, createdMs: 5, updatedMs: 5 + version,
})

/**
 * The {@link ShadowStore} and {@link PayloadSchemaStore} contracts (see shadow/ports.ts). Every implementation
 * calls this with its own opener; `opts.skip` lets one that needs a server (PostgreSQL) skip when none is set up.
 */
export function shadowStoreContract (name: string, open: () => Promise<ShadowStoreHarness>, opts: { skip?: boolean } = {}): void {
  test(`${name} ShadowStore: unknown things and shadows resolve false/undefined, never reject`, opts, async (t) => {
    const h = await open()
    t.after(() => h.close())
    await h.shadows.read(async (s) => {
      assert.equal(await s.thingExists('nope'), false)
      assert.equal(await s.get('nope', ''), undefined)
      assert.deepEqual(await s.listNamed('nope', undefined, 10), [])
    })
    await h.createThing('lamp-1')
    assert.equal(await h.shadows.read(s => s.thingExists('lamp-1')), true)
    assert.equal(await h.shadows.read(s => s.thingExists('LAMP-1')), false, 'names are case-sensitive')
  })

  test(`${name} ShadowStore: put then get round-trips byte for byte; put replaces; returned buffers are copies`, opts, async (t) => {
    const h = await open()
    t.after(() => h.close())
    await h.createThing('lamp-1')
    await h.shadows.transaction(async ({ store }) => { await store.put(row('lamp-1', '', 1, 7)) })
    const got = await h.shadows.read(s => s.get('lamp-1', ''))
    assert.deepEqual(got, row('lamp-1', '', 1, 7))
    got?.sealed?.fill(0)
    assert.deepEqual(await h.shadows.read(s => s.get('lamp-1', '')), row('lamp-1', '', 1, 7))
    await h.shadows.transaction(async ({ store }) => { await store.put(row('lamp-1', '', 2, 9)) })
    assert.deepEqual(await h.shadows.read(s => s.get('lamp-1', '')), row('lamp-1', '', 2, 9))
  })

  test(`${name} ShadowStore: a tombstone keeps its version and is not listed`, opts, async (t) => {
    const h = await open()
    t.after(() => h.close())
    await h.createThing('lamp-1')
    await h.shadows.transaction(async ({ store }) => {
      await store.put(row('lamp-1', 'config', 4, 1))
      await store.put({ thingName: 'lamp-1', shadowName: 'config', version: 4, updatedMs: 9, deletedMs: 9 })
    })
    assert.deepEqual(await h.shadows.read(s => s.get('lamp-1', 'config')), { thingName: 'lamp-1', shadowName: 'config', version: 4, updatedMs: 9, deletedMs: 9 })
    assert.deepEqual(await h.shadows.read(s => s.listNamed('lamp-1', undefined, 10)), [])
  })

  test(`${name} ShadowStore: listNamed gives live named shadows of one thing, ascending, paged after a name`, opts, async (t) => {
    const h = await open()
    t.after(() => h.close())
    await h.createThing('lamp-1')
    await h.createThing('lamp-2')
    await h.shadows.transaction(async ({ store }) => {
      for (const n of ['zeta', 'alpha', 'm$id', 'beta']) await store.put(row('lamp-1', n, 1, 1))
      await store.put(row('lamp-1', '', 1, 1))
      await store.put(row('lamp-2', 'other', 1, 1))
    })
    assert.deepEqual(await h.shadows.read(s => s.listNamed('lamp-1', undefined, 10)), ['alpha', 'beta', 'm$id', 'zeta'])
    assert.deepEqual(await h.shadows.read(s => s.listNamed('lamp-1', undefined, 2)), ['alpha', 'beta'])
    assert.deepEqual(await h.shadows.read(s => s.listNamed('lamp-1', 'beta', 10)), ['m$id', 'zeta'])
    assert.deepEqual(await h.shadows.read(s => s.listNamed('lamp-2', undefined, 10)), ['other'])
  })

  test(`${name} ShadowStorage: a throw rolls back the shadow write and its audit event together`, opts, async (t) => {
    const h = await open()
    t.after(() => h.close())
    await h.createThing('lamp-1')
    const before = await h.auditCount()
    await assert.rejects(h.shadows.transaction(async ({ store, audit }) => {
      await store.put(row('lamp-1', '', 1, 1))
      await audit.append({ action: 'iot.UpdateThingShadow', actor: 'test', outcome: 'success' })
      throw new Error('boom')
    }), /boom/)
    assert.equal(await h.shadows.read(s => s.get('lamp-1', '')), undefined)
    assert.equal(await h.auditCount(), before)
    await h.shadows.transaction(async ({ store, audit }) => {
      await store.put(row('lamp-1', '', 1, 1))
      await audit.append({ action: 'iot.UpdateThingShadow', actor: 'test', outcome: 'success' })
    })
    assert.equal(await h.auditCount(), before + 1)
  })

  test(`${name} ShadowStorage: units run one at a time in start order (read-modify-write never interleaves)`, opts, async (t) => {
    const h = await open()
    t.after(() => h.close())
    await h.createThing('lamp-1')
    await h.shadows.transaction(async ({ store }) => { await store.put(row('lamp-1', '', 0, 0)) })
    await Promise.all(Array.from({ length: 20 }, () => h.shadows.transaction(async ({ store }) => {
      const cur = await store.get('lamp-1', '')
      await new Promise(resolve => setImmediate(resolve))
      await store.put(row('lamp-1', '', (cur?.version ?? 0) + 1, 1))
    })))
    assert.equal((await h.shadows.read(s => s.get('lamp-1', '')))?.version, 20)
  })

  test(`${name} PayloadSchemaStore: put, get, list ascending, replace, delete`, opts, async (t) => {
    const h = await open()
    t.after(() => h.close())
    assert.deepEqual(await h.schemas.read(s => s.list()), [])
    assert.equal(await h.schemas.read(s => s.count()), 0)
    assert.equal(await h.schemas.read(s => s.get('temp')), undefined)
    await h.schemas.transaction(async ({ store }) => {
      await store.put(schema('temp'))
      await store.put(schema('humidity'))
      await store.put({ ...schema('nodesc'), description: undefined })
    })
    assert.deepEqual(await h.schemas.read(s => s.get('temp')), schema('temp'))
    assert.deepEqual((await h.schemas.read(s => s.list())).map(s => s.name), ['humidity', 'nodesc', 'temp'])
    assert.equal(await h.schemas.read(s => s.count()), 3)
    assert.equal(Object.hasOwn(await h.schemas.read(async s => (await s.get('nodesc')) ?? {}), 'description'), false)
    await h.schemas.transaction(async ({ store }) => { await store.put(schema('temp', 2)) })
    assert.deepEqual(await h.schemas.read(s => s.get('temp')), schema('temp', 2))
    assert.equal(await h.schemas.transaction(({ store }) => store.delete('temp')), true)
    assert.equal(await h.schemas.transaction(({ store }) => store.delete('temp')), false)
    assert.equal(await h.schemas.read(s => s.get('temp')), undefined)
    assert.equal(await h.schemas.read(s => s.count()), 2, 'a replace does not add; a delete removes')
  })
}
