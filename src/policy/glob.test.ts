import assert from 'node:assert/strict'
import test from 'node:test'
import { arnGlobMatch, compileArnGlob, compileGlob, compileGlobText, globMatch, splitArnPieces, stripGlobPrefix } from './glob.ts'

const CASES: [string, string, boolean][] = [
  ['abc', 'abc', true], ['abc', 'abd', false], ['abc', 'ab', false], ['', '', true], ['', 'a', false],
  ['*', '', true], ['*', 'anything/at/all', true], ['a*', 'a', true], ['a*', 'ba', false], ['*a', 'ba', true],
  ['a*c', 'abbbc', true], ['a*c', 'abbbd', false], ['a*b*c', 'axxbyyc', true], ['a*b*c', 'acb', false],
  ['a?c', 'abc', true], ['a?c', 'ac', false], ['a??', 'abc', true], ['*?', '', false], ['*?', 'x', true],
  ['a**b', 'ab', true], ['*b*b*', 'abab', true], ['*aab', 'aaab', true], ['?*?', 'ab', true], ['?*?', 'a', false],
  ['x/*/z', 'x/y/q/z', true], ['x/?/z', 'x/yy/z', false],
]

for (const [pattern, input, expected] of CASES) {
  test(`glob ${JSON.stringify(pattern)} ~ ${JSON.stringify(input)} is ${String(expected)}`, () => {
    assert.equal(globMatch(compileGlobText(pattern), input), expected)
    // agrees with an anchored regular expression
    const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\/]/g, '\\$&').replace(/\*/g, '[\\s\\S]*').replace(/\?/g, '[\\s\\S]')}$`)
    assert.equal(re.test(input), expected)
  })
}

test('literal pieces never act as wildcards', () => {
  const g = compileGlob([{ text: 'a/', wild: true }, { text: '*?', wild: false }, { text: '/*', wild: true }])
  assert.equal(globMatch(g, 'a/*?/x'), true)
  assert.equal(globMatch(g, 'a/bc/x'), false)
  assert.equal(g.prefix, 'a/*?/')
})

test('stripGlobPrefix removes a literal prefix, reports impossible and undecidable prefixes', () => {
  const g = compileGlobText('topic/a/*')
  const s = stripGlobPrefix(g, 'topic/')
  assert.ok(s !== undefined && s !== 'no-match')
  assert.equal(globMatch(s, 'a/b'), true)
  assert.equal(stripGlobPrefix(compileGlobText('topicfilter/a'), 'topic/'), 'no-match')
  assert.equal(stripGlobPrefix(compileGlobText('top*'), 'topic/'), undefined)
  assert.equal(stripGlobPrefix(compileGlobText('top?c/x'), 'topic/'), undefined)
  assert.equal(stripGlobPrefix(compileGlobText('top'), 'topic/'), 'no-match')
})

test('ARN globs match component by component', () => {
  const g = compileArnGlob(['arn', 'aws', 'iot', '*', '*'].map(h => [{ text: h, wild: true }]), [{ text: 'topic/*', wild: true }])
  assert.equal(arnGlobMatch(g, 'arn:aws:iot:eu-west-1:1:topic/a:b'), true)
  assert.equal(arnGlobMatch(g, 'arn:aws:iot:eu:west:1:topic/a'), false)
  assert.equal(arnGlobMatch(g, 'arn:aws:iot:x'), false)
  assert.equal(g.prefix, 'arn:aws:iot:')
})

test('splitArnPieces splits at the first five colons of any piece', () => {
  const s = splitArnPieces([{ text: 'arn:aws:', wild: true }, { text: 'iam::1', wild: false }, { text: ':user/*:x', wild: true }])
  assert.ok(s !== undefined)
  assert.deepEqual(s.head.map(h => h.map(p => p.text).join('')), ['arn', 'aws', 'iam', '', '1'])
  assert.deepEqual(s.tail, [{ text: 'user/*:x', wild: true }])
  assert.equal(splitArnPieces([{ text: 'a:b', wild: true }]), undefined)
})
