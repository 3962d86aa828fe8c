import { test } from 'node:test'
import assert from 'node:assert/strict'
import { RetainedIndex, SubscriptionTrie } from './topic-trie.ts'
import type { SharedGroup } from './topic-trie.ts'
import { topicMatches } from '../core/index.ts'

interface Sub { readonly group: string | undefined, readonly name: string }

function matchNames (trie: SubscriptionTrie<Sub>, topic: string): string[] {
  const subs: Sub[] = []
  const groups: Array<SharedGroup<Sub>> = []
  trie.match(topic, subs, groups)
  return [...subs.map((s) => s.name), ...groups.map((g) => `$share/${g.name}/${g.filter}`)].sort()
}

const FILTERS = ['#', '+', 'a', 'a/#', 'a/+', 'a/b', 'a/+/c', '+/b', '+/+', '/+', 'a//b', '$SYS/#', '$SYS/+', '+/#', 'a/b/c/#']
const TOPICS = ['a', 'a/b', 'a/b/c', 'a/x/c', '/b', 'x/b', 'a//b', '$SYS/x', '$SYS', '$SYS/x/y', 'a/b/c/d', '/', '', '//', 'a/b/', 'a/', 'x/y/z']

test('trie matches exactly what the reference matcher says, for every filter/topic pair', () => {
  const trie = new SubscriptionTrie<Sub>()
  for (const f of FILTERS) trie.add(f, { group: undefined, name: f })
  for (const topic of TOPICS) {
    const want = FILTERS.filter((f) => topicMatches(f, topic)).sort()
    assert.deepEqual(matchNames(trie, topic), want, topic)
  }
})

test('trie remove prunes and leaves other subscriptions intact; size counts entries', () => {
  const trie = new SubscriptionTrie<Sub>()
  const s1 = { group: undefined, name: 'a/+' }
  const s2 = { group: undefined, name: 'a/+ (2)' }
  trie.add('a/+', s1)
  trie.add('a/+', s2)
  trie.add('a/+', s1)
  assert.equal(trie.size, 2)
  assert.equal(trie.remove('a/+', s1), true)
  assert.equal(trie.remove('a/+', s1), false)
  assert.equal(trie.remove('zz/top', s1), false)
  assert.deepEqual(matchNames(trie, 'a/x'), ['a/+ (2)'])
  assert.equal(trie.remove('a/+', s2), true)
  assert.equal(trie.size, 0)
  assert.deepEqual(matchNames(trie, 'a/x'), [])
})

test('shared groups: one group entry per filter, members round-robin state survives removal', () => {
  const trie = new SubscriptionTrie<Sub>()
  const m1 = { group: 'g', name: 'm1' }
  const m2 = { group: 'g', name: 'm2' }
  trie.add('a/+', m1)
  trie.add('a/+', m2)
  trie.add('a/+', { group: 'h', name: 'h1' })
  const groups: Array<SharedGroup<Sub>> = []
  trie.match('a/x', [], groups)
  assert.deepEqual(groups.map((g) => [g.name, g.members.length]).sort(), [['g', 2], ['h', 1]])
  trie.remove('a/+', m1)
  const again: Array<SharedGroup<Sub>> = []
  trie.match('a/x', [], again)
  assert.deepEqual(again.find((g) => g.name === 'g')?.members.map((m) => m.name), ['m2'])
})

test('retained index: filter lookups agree with the reference matcher; delete prunes', () => {
  const idx = new RetainedIndex<string>()
  for (const t of TOPICS.filter((x) => x !== '')) idx.set(t, t)
  for (const f of FILTERS) {
    const got: string[] = []
    idx.match(f, (m) => got.push(m))
    const want = TOPICS.filter((t) => t !== '' && topicMatches(f, t))
    assert.deepEqual(got.sort(), want.sort(), f)
  }
  assert.equal(idx.delete('a/b'), true)
  assert.equal(idx.delete('a/b'), false)
  assert.equal(idx.get('a/b'), undefined)
  assert.equal(idx.get('a/b/c'), 'a/b/c')
  assert.equal(idx.size, TOPICS.length - 2)
})
