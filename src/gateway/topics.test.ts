import { test } from 'node:test'
import assert from 'node:assert/strict'
import { topicMatches } from '../core/index.ts'
import { checkTopicName, parseTopicFilter } from './topics.ts'
import type { TopicLimits } from './topics.ts'

const AWS: TopicLimits = { maxTopicBytes: 256, maxTopicSlashes: 7, maxReservedTopicBytes: 1024, reservedPrefix: '$aws/' }

test('[MQTT-4.7.3-1] [MQTT-3.3.2-2] [MQTT-4.7.3-2] topic names: non-empty, no wildcards, no U+0000', () => {
  const table: Array<[string, string | undefined]> = [
    ['a/b', undefined], ['/', undefined], ['a//b', undefined], ['$SYS/x', undefined],
    ['', 'empty'], ['a/+', 'wildcard'], ['a/#', 'wildcard'], ['a+b', 'wildcard'], ['a\u0000b', 'null-char'],
  ]
  for (const [topic, want] of table) assert.equal(checkTopicName(topic), want, topic)
})

test('AWS limits: 256 bytes and 7 slashes for ordinary topics; $aws/ topics only capped in length', () => {
  assert.equal(checkTopicName('a/'.repeat(7) + 'b', AWS), undefined)
  assert.equal(checkTopicName('a/'.repeat(8) + 'b', AWS), 'too-deep')
  assert.equal(checkTopicName('x'.repeat(256), AWS), undefined)
  assert.equal(checkTopicName('x'.repeat(257), AWS), 'too-long')
  assert.equal(checkTopicName('é'.repeat(129), AWS), 'too-long', 'bytes, not characters')
  assert.equal(checkTopicName('$aws/things/t/shadow/name/s/update/accepted/x/y/z', AWS), undefined)
  assert.equal(checkTopicName('$aws/' + 'x'.repeat(1100), AWS), 'too-long')
})

test('[MQTT-4.7.1-2] [MQTT-4.7.1-3] topic filter syntax', () => {
  const ok = ['#', '+', 'a/#', 'a/+/b', '+/+', '/+', 'a//b', '+/#', 'sport/tennis/#']
  const bad: Array<[string, string]> = [
    ['', 'empty'], ['a#', 'syntax'], ['a/#/b', 'syntax'], ['a/b#', 'syntax'], ['a+', 'syntax'], ['a/+b', 'syntax'],
    ['+a', 'syntax'], ['a/\u0000', 'null-char'],
  ]
  for (const f of ok) assert.deepEqual(parseTopicFilter(f), { filter: f }, f)
  for (const [f, want] of bad) assert.equal(parseTopicFilter(f), want, f)
})

test('[MQTT-4.8.2-1] [MQTT-4.8.2-2] shared subscription filters', () => {
  assert.deepEqual(parseTopicFilter('$share/g1/a/+'), { filter: 'a/+', group: 'g1' })
  assert.deepEqual(parseTopicFilter('$share/g/#'), { filter: '#', group: 'g' })
  for (const f of ['$share/', '$share/g', '$share//a', '$share/g/', '$share/g+/a', '$share/#/a']) {
    assert.equal(parseTopicFilter(f), 'share-invalid', f)
  }
  assert.equal(parseTopicFilter('$share/g/' + 'a/'.repeat(8) + 'b', AWS), 'too-deep', 'limits apply to the filter part')
})

test('[MQTT-4.7.2-1] matching, $ topics and the parent level of #', () => {
  const table: Array<[string, string, boolean]> = [
    ['sport/tennis/player1/#', 'sport/tennis/player1', true],
    ['sport/tennis/player1/#', 'sport/tennis/player1/ranking', true],
    ['sport/#', 'sport', true],
    ['sport/tennis/+', 'sport/tennis/player1', true],
    ['sport/tennis/+', 'sport/tennis/player1/ranking', false],
    ['sport/+', 'sport', false],
    ['sport/+', 'sport/', true],
    ['+/+', '/finance', true],
    ['/+', '/finance', true],
    ['+', '/finance', false],
    ['#', '$SYS/x', false],
    ['+/x', '$SYS/x', false],
    ['$SYS/#', '$SYS/x', true],
    ['$SYS/+', '$SYS/x', true],
    ['a/b', 'a/b', true],
    ['a/b', 'a/b/c', false],
  ]
  for (const [f, topic, want] of table) assert.equal(topicMatches(f, topic), want, `${f} ~ ${topic}`)
})
