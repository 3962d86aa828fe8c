import { AlreadyExistsError, AppError, InvalidRequestError, NotFoundError, iotArn, newUuid } from '../core/index.ts'
import type { Caller, RegistryDeps } from './context.ts'
import { auditChange, decodeToken, pageSize, paginate } from './context.ts'
import type { RegistryUnit, ThingFilter } from './ports.ts'
import type { Page, Thing, ThingGroup, ThingType } from './types.ts'
import { MAX_ATTRIBUTES_TYPED, MAX_ATTRIBUTES_UNTYPED, checkAttributes, checkName } from './validate.ts'

/** AWS: a thing is a direct member of at most 10 static groups; a hierarchy is at most 7 levels deep. */
const MAX_GROUPS_PER_THING = 10
const MAX_GROUP_DEPTH = 7

const sameAttributes = (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean => {
  const ka = Object.keys(a)
  return ka.length === Object.keys(b).length && ka.every(k => a[k] === b[k])
}

export interface AttributePayload { readonly attributes?: unknown, readonly merge?: boolean }

/** Things, thing types and thing groups (AWS IoT registry). */
export class ThingService {
  readonly #d: RegistryDeps
  constructor (deps: RegistryDeps) { this.#d = deps }

  thingArn (name: string): string { return iotArn(this.#d.arn, 'thing', name) }
  thingTypeArn (name: string): string { return iotArn(this.#d.arn, 'thingtype', name) }
  thingGroupArn (name: string): string { return iotArn(this.#d.arn, 'thinggroup', name) }

  /** CreateThing. Idempotent for an identical definition (AWS); a different one is ResourceAlreadyExists. */
  async createThing (caller: Caller, input: { thingName: unknown, thingTypeName?: unknown, attributePayload?: AttributePayload }): Promise<Thing> {
    const name = checkName('thingName', input.thingName)
    const typeName = input.thingTypeName === undefined || input.thingTypeName === null ? undefined : checkName('thingTypeName', input.thingTypeName)
    const attributes = checkAttributes(input.attributePayload?.attributes, typeName === undefined ? MAX_ATTRIBUTES_UNTYPED : MAX_ATTRIBUTES_TYPED)
    const thing = await this.#d.storage.transaction(async (u) => {
      const existing = await u.store.getThing(name)
      if (existing !== undefined) {
        if (existing.typeName === typeName && sameAttributes(existing.attributes, attributes)) return existing
        throw new AlreadyExistsError('thing', name, this.thingArn(name))
      }
      if (typeName !== undefined) await this.#requireUsableType(u, typeName)
      const now = this.#d.clock.nowMs()
      const t: Thing = { name, id: newUuid(), typeName, attributes, version: 1, createdMs: now, updatedMs: now }
      await u.store.putThing(t)
      await auditChange(u, caller, 'iot.CreateThing', this.thingArn(name), { thingTypeName: typeName })
      return t
    })
    return thing
  }

  async #requireUsableType (u: RegistryUnit, typeName: string): Promise<ThingType> {
    const type = await u.store.getThingType(typeName)
    if (type === undefined) throw new NotFoundError('thing type', typeName)
    if (type.deprecated) throw new InvalidRequestError('thing type is deprecated: things cannot be given it', { thingTypeName: typeName })
    return type
  }

  async describeThing (thingName: string): Promise<Thing> {
    const t = await this.#d.storage.read(s => s.getThing(thingName))
    if (t === undefined) throw new NotFoundError('thing', thingName)
    return t
  }

  async findThing (thingName: string): Promise<Thing | undefined> {
    return this.#d.storage.read(s => s.getThing(thingName))
  }

  /** UpdateThing: optimistic concurrency with expectedVersion; merge=true merges and "" deletes an attribute. */
  async updateThing (caller: Caller, thingName: string, input: { thingTypeName?: unknown, attributePayload?: AttributePayload, expectedVersion?: unknown, removeThingType?: unknown }): Promise<void> {
    checkName('thingName', thingName)
    if (input.removeThingType === true && input.thingTypeName !== undefined && input.thingTypeName !== null) {
      throw new InvalidRequestError('removeThingType and thingTypeName are mutually exclusive')
    }
    await this.#d.storage.transaction(async (u) => {
      const t = await u.store.getThing(thingName)
      if (t === undefined) throw new NotFoundError('thing', thingName)
      if (input.expectedVersion !== undefined && input.expectedVersion !== null && Number(input.expectedVersion) !== t.version) {
        throw new AppError('ERR_REGISTRY_VERSION_CONFLICT', 'the thing version does not match expectedVersion', { thingName, version: t.version })
      }
      let typeName = t.typeName
      if (input.removeThingType === true) typeName = undefined
      else if (input.thingTypeName !== undefined && input.thingTypeName !== null) {
        typeName = checkName('thingTypeName', input.thingTypeName)
        if (typeName !== t.typeName) await this.#requireUsableType(u, typeName)
      }
      const max = typeName === undefined ? MAX_ATTRIBUTES_UNTYPED : MAX_ATTRIBUTES_TYPED
      let attributes: Record<string, string> = { ...t.attributes }
      if (input.attributePayload !== undefined) {
        const incoming = checkAttributes(input.attributePayload.attributes, MAX_ATTRIBUTES_TYPED)
        if (input.attributePayload.merge === true) {
          for (const [k, v] of Object.entries(incoming)) { if (v === '') delete attributes[k]; else attributes[k] = v }
        } else attributes = Object.fromEntries(Object.entries(incoming).filter(([, v]) => v !== ''))
      }
      if (Object.keys(attributes).length > max) throw new InvalidRequestError(`at most ${max} attributes are allowed here`, { field: 'attributes' })
      await u.store.putThing({ ...t, typeName, attributes, version: t.version + 1, updatedMs: this.#d.clock.nowMs() })
      await auditChange(u, caller, 'iot.UpdateThing', this.thingArn(thingName))
    })
    this.#d.events.publish({ type: 'thing.updated', thingName })
  }

  /** DeleteThing: succeeds for an absent thing (AWS); refuses while principals are attached. */
  async deleteThing (caller: Caller, thingName: string, expectedVersion?: number): Promise<void> {
    checkName('thingName', thingName)
    const deleted = await this.#d.storage.transaction(async (u) => {
      const t = await u.store.getThing(thingName)
      if (t === undefined) return false
      if (expectedVersion !== undefined && expectedVersion !== t.version) {
        throw new AppError('ERR_REGISTRY_VERSION_CONFLICT', 'the thing version does not match expectedVersion', { thingName, version: t.version })
      }
      if ((await u.store.listThingPrincipals(thingName, { limit: 1 })).length > 0) {
        throw new InvalidRequestError('cannot delete a thing that has principals attached: detach them first', { thingName })
      }
      await u.store.deleteThing(thingName)
      await auditChange(u, caller, 'iot.DeleteThing', this.thingArn(thingName))
      return true
    })
    if (deleted) this.#d.events.publish({ type: 'thing.deleted', thingName })
  }

  async listThings (filter: ThingFilter, nextToken: string | undefined, maxResults: number | undefined): Promise<Page<Thing>> {
    const limit = pageSize(maxResults)
    const rows = await this.#d.storage.read(s => s.listThings(filter, { after: decodeToken(nextToken), limit: limit + 1 }))
    return paginate(rows, limit, t => t.name)
  }

  async createThingType (caller: Caller, input: { thingTypeName: unknown, description?: unknown, searchableAttributes?: unknown }): Promise<ThingType> {
    const name = checkName('thingTypeName', input.thingTypeName)
    const description = input.description === undefined || input.description === null ? undefined : String(input.description)
    if (description !== undefined && description.length > 2028) throw new InvalidRequestError('thingTypeDescription must be at most 2028 characters')
    const searchable = input.searchableAttributes ?? []
    if (!Array.isArray(searchable) || searchable.length > 3 || !searchable.every(a => typeof a === 'string' && /^[a-zA-Z0-9_.,@/:#-]{1,128}$/.test(a))) {
      throw new InvalidRequestError('searchableAttributes must be at most 3 attribute names', { field: 'searchableAttributes' })
    }
    return this.#d.storage.transaction(async (u) => {
      const existing = await u.store.getThingType(name)
      if (existing !== undefined) {
        if (existing.description === description && existing.searchableAttributes.join() === (searchable as string[]).join()) return existing
        throw new AlreadyExistsError('thing type', name, this.thingTypeArn(name))
      }
      const t: ThingType = { name, id: newUuid(), description, searchableAttributes: searchable as string[], deprecated: false, deprecationMs: undefined, createdMs: this.#d.clock.nowMs() }
      await u.store.putThingType(t)
      await auditChange(u, caller, 'iot.CreateThingType', this.thingTypeArn(name))
      return t
    })
  }

  async describeThingType (name: string): Promise<ThingType> {
    const t = await this.#d.storage.read(s => s.getThingType(name))
    if (t === undefined) throw new NotFoundError('thing type', name)
    return t
  }

  async listThingTypes (nextToken: string | undefined, maxResults: number | undefined, thingTypeName?: string): Promise<Page<ThingType>> {
    if (thingTypeName !== undefined) {
      const t = await this.#d.storage.read(s => s.getThingType(thingTypeName))
      return { items: t === undefined ? [] : [t], nextToken: undefined }
    }
    const limit = pageSize(maxResults)
    const rows = await this.#d.storage.read(s => s.listThingTypes({ after: decodeToken(nextToken), limit: limit + 1 }))
    return paginate(rows, limit, t => t.name)
  }

  /** DeprecateThingType: existing things keep the type; new things may not use it. undoDeprecate reverses it. */
  async deprecateThingType (caller: Caller, name: string, undo: boolean): Promise<void> {
    await this.#d.storage.transaction(async (u) => {
      const t = await u.store.getThingType(name)
      if (t === undefined) throw new NotFoundError('thing type', name)
      await u.store.putThingType({ ...t, deprecated: !undo, deprecationMs: undo ? undefined : this.#d.clock.nowMs() })
      await auditChange(u, caller, 'iot.DeprecateThingType', this.thingTypeArn(name), { undoDeprecate: undo })
    })
  }

  /** DeleteThingType: AWS requires the type to be deprecated first and no thing to use it. */
  async deleteThingType (caller: Caller, name: string): Promise<void> {
    await this.#d.storage.transaction(async (u) => {
      const t = await u.store.getThingType(name)
      if (t === undefined) throw new NotFoundError('thing type', name)
      if (!t.deprecated) throw new InvalidRequestError('a thing type must be deprecated before it can be deleted', { thingTypeName: name })
      if (await u.store.countThingsOfType(name) > 0) throw new InvalidRequestError('a thing type still used by things cannot be deleted', { thingTypeName: name })
      await u.store.deleteThingType(name)
      await auditChange(u, caller, 'iot.DeleteThingType', this.thingTypeArn(name))
    })
  }

  async createThingGroup (caller: Caller, input: { thingGroupName: unknown, parentGroupName?: unknown, description?: unknown, attributes?: unknown }): Promise<ThingGroup> {
    const name = checkName('thingGroupName', input.thingGroupName)
    const parentName = input.parentGroupName === undefined || input.parentGroupName === null ? undefined : checkName('thingGroupName', input.parentGroupName)
    const description = input.description === undefined || input.description === null ? undefined : String(input.description)
    if (description !== undefined && description.length > 2028) throw new InvalidRequestError('thingGroupDescription must be at most 2028 characters')
    const attributes = checkAttributes(input.attributes, MAX_ATTRIBUTES_TYPED)
    return this.#d.storage.transaction(async (u) => {
      const existing = await u.store.getThingGroup(name)
      if (existing !== undefined) {
        if (existing.parentName === parentName && existing.description === description && sameAttributes(existing.attributes, attributes)) return existing
        throw new AlreadyExistsError('thing group', name, this.thingGroupArn(name))
      }
      if (parentName !== undefined) {
        const chain = await this.#ancestry(u, parentName)
        if (chain.length >= MAX_GROUP_DEPTH) throw new InvalidRequestError(`thing group hierarchies are at most ${MAX_GROUP_DEPTH} levels deep`)
      }
      const g: ThingGroup = { name, id: newUuid(), parentName, description, attributes, version: 1, createdMs: this.#d.clock.nowMs() }
      await u.store.putThingGroup(g)
      await auditChange(u, caller, 'iot.CreateThingGroup', this.thingGroupArn(name), { parentGroupName: parentName })
      return g
    })
  }

  /** Root-first ancestry of a group, the group itself last. Throws NotFound when it is absent. */
  async #ancestry (u: RegistryUnit, groupName: string): Promise<ThingGroup[]> {
    const out: ThingGroup[] = []
    let name: string | undefined = groupName
    while (name !== undefined) {
      const g = await u.store.getThingGroup(name)
      if (g === undefined) throw new NotFoundError('thing group', name)
      out.unshift(g)
      name = g.parentName
      if (out.length > MAX_GROUP_DEPTH + 1) throw new AppError('ERR_STORAGE_CORRUPT', 'thing group hierarchy has a cycle', { groupName })
    }
    return out
  }

  async describeThingGroup (name: string): Promise<{ group: ThingGroup, ancestors: ThingGroup[] }> {
    return this.#d.storage.read(async (s) => {
      const g = await s.getThingGroup(name)
      if (g === undefined) throw new NotFoundError('thing group', name)
      const ancestors: ThingGroup[] = []
      let p = g.parentName
      while (p !== undefined) {
        const pg = await s.getThingGroup(p)
        if (pg === undefined) break
        ancestors.unshift(pg)
        p = pg.parentName
      }
      return { group: g, ancestors }
    })
  }

  async updateThingGroup (caller: Caller, name: string, input: { description?: unknown, attributes?: unknown, merge?: boolean, expectedVersion?: unknown }): Promise<number> {
    return this.#d.storage.transaction(async (u) => {
      const g = await u.store.getThingGroup(name)
      if (g === undefined) throw new NotFoundError('thing group', name)
      if (input.expectedVersion !== undefined && input.expectedVersion !== null && Number(input.expectedVersion) !== g.version) {
        throw new AppError('ERR_REGISTRY_VERSION_CONFLICT', 'the thing group version does not match expectedVersion', { thingGroupName: name })
      }
      const incoming = checkAttributes(input.attributes, MAX_ATTRIBUTES_TYPED)
      let attributes: Record<string, string> = input.merge === true ? { ...g.attributes } : {}
      for (const [k, v] of Object.entries(incoming)) { if (v === '') delete attributes[k]; else attributes[k] = v }
      if (input.attributes === undefined) attributes = { ...g.attributes }
      const description = input.description === undefined ? g.description : String(input.description)
      const version = g.version + 1
      await u.store.putThingGroup({ ...g, attributes, description, version })
      await auditChange(u, caller, 'iot.UpdateThingGroup', this.thingGroupArn(name))
      return version
    })
  }

  /** DeleteThingGroup: AWS refuses while child groups exist; absent groups succeed. */
  async deleteThingGroup (caller: Caller, name: string, expectedVersion?: number): Promise<void> {
    const members = await this.#d.storage.transaction(async (u) => {
      const g = await u.store.getThingGroup(name)
      if (g === undefined) return []
      if (expectedVersion !== undefined && expectedVersion !== g.version) {
        throw new AppError('ERR_REGISTRY_VERSION_CONFLICT', 'the thing group version does not match expectedVersion', { thingGroupName: name })
      }
      if (await u.store.countGroupChildren(name) > 0) throw new InvalidRequestError('cannot delete a thing group that has child groups', { thingGroupName: name })
      if ((await u.store.listPoliciesForTarget(this.thingGroupArn(name))).length > 0) {
        throw new AppError('ERR_REGISTRY_DELETE_CONFLICT', 'cannot delete a thing group with policies attached', { thingGroupName: name })
      }
      const m = await u.store.listThingsInGroup(name, { limit: 1_000_000 })
      await u.store.deleteThingGroup(name)
      await auditChange(u, caller, 'iot.DeleteThingGroup', this.thingGroupArn(name))
      return m
    })
    for (const thingName of members) this.#d.events.publish({ type: 'thing.group', thingName, groupName: name, member: false })
  }

  async listThingGroups (filter: { parentGroup?: string, namePrefixFilter?: string, recursive?: boolean }, nextToken: string | undefined, maxResults: number | undefined): Promise<Page<ThingGroup>> {
    const limit = pageSize(maxResults)
    if (filter.parentGroup !== undefined && filter.recursive === true) {
      // Descendants of parentGroup, breadth-first, then paged by name.
      const all = await this.#d.storage.read(async (s) => {
        const out: ThingGroup[] = []
        let frontier = [filter.parentGroup as string]
        while (frontier.length > 0) {
          const next: string[] = []
          for (const p of frontier) {
            for (const g of await s.listThingGroups({ parentName: p }, { limit: 1_000_000 })) { out.push(g); next.push(g.name) }
          }
          frontier = next
        }
        return out.filter(g => filter.namePrefixFilter === undefined || g.name.startsWith(filter.namePrefixFilter)).sort((a, b) => a.name < b.name ? -1 : 1)
      })
      const after = decodeToken(nextToken)
      return paginate(all.filter(g => after === undefined || g.name > after).slice(0, limit + 1), limit, g => g.name)
    }
    const rows = await this.#d.storage.read(s => s.listThingGroups({ parentName: filter.parentGroup, namePrefix: filter.namePrefixFilter }, { after: decodeToken(nextToken), limit: limit + 1 }))
    return paginate(rows, limit, g => g.name)
  }

  /**
   * AddThingToThingGroup. AWS: a thing is in at most 10 groups, and never in two groups of the same hierarchy
   * (two groups that share a root).
   */
  async addThingToThingGroup (caller: Caller, groupName: string, thingName: string): Promise<void> {
    const added = await this.#d.storage.transaction(async (u) => {
      if (await u.store.getThing(thingName) === undefined) throw new NotFoundError('thing', thingName)
      const chain = await this.#ancestry(u, groupName)
      const current = await u.store.listGroupsForThing(thingName)
      if (current.includes(groupName)) return false
      if (current.length >= MAX_GROUPS_PER_THING) throw new AppError('ERR_REGISTRY_LIMIT_EXCEEDED', `a thing can be in at most ${MAX_GROUPS_PER_THING} thing groups`, { thingName })
      const root = chain[0].name
      for (const other of current) {
        const otherChain = await this.#ancestry(u, other)
        if (otherChain[0].name === root) throw new InvalidRequestError('a thing cannot be in two thing groups of the same hierarchy', { thingName, thingGroupName: groupName })
      }
      await u.store.addThingToGroup(groupName, thingName)
      await auditChange(u, caller, 'iot.AddThingToThingGroup', this.thingGroupArn(groupName), { thingName })
      return true
    })
    if (added) this.#d.events.publish({ type: 'thing.group', thingName, groupName, member: true })
  }

  async removeThingFromThingGroup (caller: Caller, groupName: string, thingName: string): Promise<void> {
    await this.#d.storage.transaction(async (u) => {
      if (await u.store.getThingGroup(groupName) === undefined) throw new NotFoundError('thing group', groupName)
      if (await u.store.getThing(thingName) === undefined) throw new NotFoundError('thing', thingName)
      await u.store.removeThingFromGroup(groupName, thingName)
      await auditChange(u, caller, 'iot.RemoveThingFromThingGroup', this.thingGroupArn(groupName), { thingName })
    })
    this.#d.events.publish({ type: 'thing.group', thingName, groupName, member: false })
  }

  async listThingsInThingGroup (groupName: string, recursive: boolean, nextToken: string | undefined, maxResults: number | undefined): Promise<Page<string>> {
    const limit = pageSize(maxResults)
    const after = decodeToken(nextToken)
    return this.#d.storage.read(async (s) => {
      if (await s.getThingGroup(groupName) === undefined) throw new NotFoundError('thing group', groupName)
      if (!recursive) return paginate(await s.listThingsInGroup(groupName, { after, limit: limit + 1 }), limit, n => n)
      const names = new Set<string>()
      let frontier = [groupName]
      while (frontier.length > 0) {
        const next: string[] = []
        for (const g of frontier) {
          for (const t of await s.listThingsInGroup(g, { limit: 1_000_000 })) names.add(t)
          for (const c of await s.listThingGroups({ parentName: g }, { limit: 1_000_000 })) next.push(c.name)
        }
        frontier = next
      }
      const sorted = [...names].sort().filter(n => after === undefined || n > after)
      return paginate(sorted.slice(0, limit + 1), limit, n => n)
    })
  }

  /** The groups a thing belongs to, each with its ancestors (for policy inheritance), root first. */
  async groupsWithAncestors (thingName: string): Promise<string[]> {
    return this.#d.storage.read(async (s) => {
      const out = new Set<string>()
      for (const g of await s.listGroupsForThing(thingName)) {
        let name: string | undefined = g
        while (name !== undefined && !out.has(name)) {
          out.add(name)
          name = (await s.getThingGroup(name))?.parentName
        }
      }
      return [...out]
    })
  }
}
