/**
 * Topic tries: `SubscriptionTrie` routes a published topic to the subscriptions whose filters match it, and
 * `RetainedIndex` finds the retained messages matching a new subscription's filter. Both walk one level per
 * `/`, so cost depends on topic depth and the number of wildcard branches, not on the number of subscriptions.
 *
 * Matching rules: `+` matches exactly one level, `#` matches the parent level and any number of levels below
 * (MQTT 3.1.1 §4.7.1.2, MQTT 5 §4.7.1.2), and filters starting with a wildcard do not match topics starting
 * with `$` [MQTT-4.7.2-1].
 */

/** What the trie needs to know about a stored subscription. */
export interface TrieSubscription {
  /** Share name for shared subscriptions (`$share/{group}/…`), undefined otherwise. */
  readonly group: string | undefined
}

/**
 * A shared subscription group at one filter: each message goes to one member (MQTT 5 §4.8.2). `cursor` is the
 * round-robin position, kept here so selection needs no extra state.
 */
export interface SharedGroup<S> {
  readonly name: string
  readonly filter: string
  readonly members: S[]
  cursor: number
}

class SubNode<S> {
  children: Map<string, SubNode<S>> | undefined = undefined
  subs: Set<S> | undefined = undefined
  groups: Map<string, SharedGroup<S>> | undefined = undefined

  isEmpty (): boolean {
    return (this.children === undefined || this.children.size === 0) &&
      (this.subs === undefined || this.subs.size === 0) &&
      (this.groups === undefined || this.groups.size === 0)
  }
}

/** Subscription routing trie. Not thread-safe (there are no threads); callers own the entries. */
export class SubscriptionTrie<S extends TrieSubscription> {
  readonly #root = new SubNode<S>()
  #size = 0

  /** Number of stored subscriptions (shared members included). */
  get size (): number { return this.#size }

  /** Adds `sub` under `filter` (the matching filter, without `$share/{group}/`). Idempotent per entry. */
  add (filter: string, sub: S): void {
    let node = this.#root
    for (const level of filter.split('/')) {
      node.children ??= new Map()
      let next = node.children.get(level)
      if (next === undefined) {
        next = new SubNode<S>()
        node.children.set(level, next)
      }
      node = next
    }
    if (sub.group === undefined) {
      node.subs ??= new Set()
      if (!node.subs.has(sub)) { node.subs.add(sub); this.#size++ }
      return
    }
    node.groups ??= new Map()
    let group = node.groups.get(sub.group)
    if (group === undefined) {
      group = { name: sub.group, filter, members: [], cursor: 0 }
      node.groups.set(sub.group, group)
    }
    if (!group.members.includes(sub)) { group.members.push(sub); this.#size++ }
  }

  /** Removes `sub` from `filter`; prunes empty nodes. Returns false when it was not there. */
  remove (filter: string, sub: S): boolean {
    const path: Array<[SubNode<S>, string]> = []
    let node = this.#root
    for (const level of filter.split('/')) {
      const next = node.children?.get(level)
      if (next === undefined) return false
      path.push([node, level])
      node = next
    }
    let removed = false
    if (sub.group === undefined) {
      removed = node.subs?.delete(sub) ?? false
    } else {
      const group = node.groups?.get(sub.group)
      if (group !== undefined) {
        const i = group.members.indexOf(sub)
        if (i >= 0) {
          group.members.splice(i, 1)
          removed = true
          if (group.cursor > i) group.cursor--
          if (group.members.length === 0) node.groups?.delete(sub.group)
        }
      }
    }
    if (!removed) return false
    this.#size--
    for (let i = path.length - 1; i >= 0 && node.isEmpty(); i--) {
      const [parent, level] = path[i]
      parent.children?.delete(level)
      node = parent
    }
    return true
  }

  /**
   * Collects the subscriptions matching `topic` into `subs` and the matching shared groups into `groups`
   * (arrays are appended to, so a caller can reuse them). A subscription appears once per matching filter.
   */
  match (topic: string, subs: S[], groups: Array<SharedGroup<S>>): void {
    this.#walk(this.#root, topic, 0, subs, groups)
  }

  #collect (node: SubNode<S>, subs: S[], groups: Array<SharedGroup<S>>): void {
    if (node.subs !== undefined) for (const s of node.subs) subs.push(s)
    if (node.groups !== undefined) for (const g of node.groups.values()) groups.push(g)
  }

  /**
   * Matches the level of `topic` that starts at index `from` (past the end: every level matched). The levels are
   * read in place rather than split out, as this runs for every message routed.
   */
  #walk (node: SubNode<S>, topic: string, from: number, subs: S[], groups: Array<SharedGroup<S>>): void {
    const children = node.children
    if (from > topic.length) {
      this.#collect(node, subs, groups)
      // `a/#` also matches `a` (the parent level).
      const hash = children?.get('#')
      if (hash !== undefined) this.#collect(hash, subs, groups)
      return
    }
    if (children === undefined) return
    let end = topic.indexOf('/', from)
    if (end < 0) end = topic.length
    // [MQTT-4.7.2-1] a filter starting with a wildcard must not match a topic starting with `$`.
    if (from > 0 || topic.charCodeAt(0) !== 0x24) {
      const hash = children.get('#')
      if (hash !== undefined) this.#collect(hash, subs, groups)
      const plus = children.get('+')
      if (plus !== undefined) this.#walk(plus, topic, end + 1, subs, groups)
    }
    const exact = children.get(from === 0 && end === topic.length ? topic : topic.slice(from, end))
    if (exact !== undefined) this.#walk(exact, topic, end + 1, subs, groups)
  }
}

class RetainedNode<M> {
  children: Map<string, RetainedNode<M>> | undefined = undefined
  message: M | undefined = undefined
}

/** Retained messages by exact topic, searchable by topic filter. */
export class RetainedIndex<M> {
  readonly #root = new RetainedNode<M>()
  #size = 0

  get size (): number { return this.#size }

  get (topic: string): M | undefined {
    let node: RetainedNode<M> | undefined = this.#root
    for (const level of topic.split('/')) {
      node = node.children?.get(level)
      if (node === undefined) return undefined
    }
    return node.message
  }

  /** Stores `message` for `topic`, replacing any previous one [MQTT-3.3.1-5]. */
  set (topic: string, message: M): void {
    let node = this.#root
    for (const level of topic.split('/')) {
      node.children ??= new Map()
      let next = node.children.get(level)
      if (next === undefined) {
        next = new RetainedNode<M>()
        node.children.set(level, next)
      }
      node = next
    }
    if (node.message === undefined) this.#size++
    node.message = message
  }

  /** Removes the retained message for `topic` [MQTT-3.3.1-10]; returns whether one existed. */
  delete (topic: string): boolean {
    const path: Array<[RetainedNode<M>, string]> = []
    let node = this.#root
    for (const level of topic.split('/')) {
      const next = node.children?.get(level)
      if (next === undefined) return false
      path.push([node, level])
      node = next
    }
    if (node.message === undefined) return false
    node.message = undefined
    this.#size--
    for (let i = path.length - 1; i >= 0; i--) {
      if (node.message !== undefined || (node.children !== undefined && node.children.size > 0)) break
      const [parent, level] = path[i]
      parent.children?.delete(level)
      node = parent
    }
    return true
  }

  /** Calls `visit` for each retained message whose topic matches `filter` (a valid filter, no `$share`). */
  match (filter: string, visit: (message: M) => void): void {
    this.#walk(this.#root, filter.split('/'), 0, visit)
  }

  /** Every retained message (for shutdown snapshots and tests). */
  all (visit: (message: M) => void): void {
    this.#all(this.#root, visit, false)
  }

  #all (node: RetainedNode<M>, visit: (message: M) => void, skipDollar: boolean): void {
    if (node.message !== undefined) visit(node.message)
    if (node.children === undefined) return
    for (const [level, child] of node.children) {
      if (skipDollar && level.charCodeAt(0) === 0x24) continue
      this.#all(child, visit, false)
    }
  }

  #walk (node: RetainedNode<M>, f: string[], i: number, visit: (message: M) => void): void {
    if (i === f.length) {
      if (node.message !== undefined) visit(node.message)
      return
    }
    const level = f[i]
    if (level === '#') {
      // `a/#` matches `a` too; at the root, `#` must skip `$` topics [MQTT-4.7.2-1].
      if (i > 0 && node.message !== undefined) visit(node.message)
      if (node.children === undefined) return
      for (const [name, child] of node.children) {
        if (i === 0 && name.charCodeAt(0) === 0x24) continue
        this.#all(child, visit, false)
      }
      return
    }
    if (node.children === undefined) return
    if (level === '+') {
      for (const [name, child] of node.children) {
        if (i === 0 && name.charCodeAt(0) === 0x24) continue
        this.#walk(child, f, i + 1, visit)
      }
      return
    }
    const child = node.children.get(level)
    if (child !== undefined) this.#walk(child, f, i + 1, visit)
  }
}
