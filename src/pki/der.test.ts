import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DerError, TAG, bitLength, children, oid, oidToString, parseTime, readRoot, readTlv, seq, time, tlv, uintFromBigInt, uintFromBytes } from './der.ts'
import { keyUsageValue, KU, randomSerial } from './template.ts'
import { serialHexOf } from './cert-der.ts'
import { parseIpAddress, assertDnsName, assertCommonName } from './validate.ts'
import { formatName, replaceCommonName, buildName } from './names.ts'
import { OID } from './oids.ts'
import { assertAppError } from './helpers.test.ts'

test('tlv encodes short and long lengths (X.690 §8.1.3)', () => {
  const cases: Array<[number, string]> = [[0, '0400'], [127, '047f'], [128, '048180'], [255, '0481ff'], [256, '04820100'], [65536, '0483010000']]
  for (const [len, header] of cases) {
    const enc = tlv(TAG.OCTET_STRING, Buffer.alloc(len))
    assert.equal(enc.subarray(0, header.length / 2).toString('hex'), header, `length ${len}`)
    assert.equal(enc.length, header.length / 2 + len)
    const t = readTlv(enc, 0)
    assert.equal(t.end, enc.length)
  }
})

test('reader rejects indefinite lengths, truncation, overruns, high tags and trailing bytes', () => {
  const bad: Array<[string, string]> = [
    ['3080', 'indefinite'],
    ['30', 'truncated'],
    ['3005020101', 'past its container'],
    ['1f0100', 'high tag'],
    ['30810100', 'non-minimal'],
    ['3085000000000100', 'too large'],
  ]
  for (const [hex, msg] of bad) assert.throws(() => readTlv(Buffer.from(hex, 'hex'), 0), (e: unknown) => e instanceof DerError && e.message.includes(msg), hex)
  assert.throws(() => readRoot(Buffer.from('3000ff', 'hex'), TAG.SEQUENCE), /trailing bytes/)
  const overrun = Buffer.from('3003020201', 'hex')
  assert.throws(() => children(overrun, readTlv(overrun, 0)), DerError)
})

test('OIDs round-trip through encoder and decoder', () => {
  for (const dotted of ['1.2.840.10045.3.1.7', '1.3.132.0.34', '2.5.29.19', '1.3.6.1.5.5.7.48.1.2', '2.16.840.1.101.3.4.2.1', '0.9.2342.19200300.100.1.25', '2.999.3', '1.2.18446744073709551616.5', '2.25.329800735698586629295641978511506172918']) {
    assert.equal(oidToString(oid(dotted).subarray(2)), dotted)
  }
  assert.equal(oid('1.2.840.10045.2.1').toString('hex'), '06072a8648ce3d0201')
})

test('INTEGER encoding is minimal and pads a set high bit', () => {
  const cases: Array<[string, string]> = [['00', '020100'], ['7f', '02017f'], ['80', '02020080'], ['0001', '020101'], ['00ff', '020200ff']]
  for (const [mag, der] of cases) assert.equal(uintFromBytes(Buffer.from(mag, 'hex')).toString('hex'), der, mag)
  assert.equal(uintFromBigInt(0n).toString('hex'), '020100')
  assert.equal(uintFromBigInt(256n).toString('hex'), '02020100')
  assert.equal(bitLength(Buffer.from('00ff', 'hex')), 8)
  assert.equal(bitLength(Buffer.from('0100', 'hex')), 9)
})

test('times: UTCTime before 2050, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5), whole seconds', () => {
  const cases: Array<[number, number, string]> = [
    [Date.UTC(2026, 0, 2, 3, 4, 5, 678), TAG.UTC_TIME, '260102030405Z'],
    [Date.UTC(2049, 11, 31, 23, 59, 59), TAG.UTC_TIME, '491231235959Z'],
    [Date.UTC(2050, 0, 1, 0, 0, 0), TAG.GENERALIZED_TIME, '20500101000000Z'],
    [Date.UTC(1950, 0, 1), TAG.UTC_TIME, '500101000000Z'],
    [Date.UTC(1949, 11, 31), TAG.GENERALIZED_TIME, '19491231000000Z'],
  ]
  for (const [ms, tag, text] of cases) {
    const enc = time(ms)
    assert.equal(enc[0], tag)
    assert.equal(enc.subarray(2).toString('latin1'), text)
    assert.equal(parseTime(enc, readTlv(enc, 0)), Math.floor(ms / 1000) * 1000)
  }
  assert.throws(() => parseTime(Buffer.from('170d3236313333323030303030305a', 'hex'), readTlv(Buffer.from('170d3236313333323030303030305a', 'hex'), 0)), /out of range/)
})

test('keyUsage BIT STRINGs are minimal DER', () => {
  assert.equal(keyUsageValue([KU.digitalSignature]).toString('hex'), '03020780')
  assert.equal(keyUsageValue([KU.digitalSignature, KU.keyEncipherment]).toString('hex'), '030205a0')
  assert.equal(keyUsageValue([KU.digitalSignature, KU.keyCertSign, KU.cRLSign]).toString('hex'), '03020186')
})

test('random serials are positive, 16 octets, 32 hex digits starting 4..7, and unique', () => {
  const seen = new Set<string>()
  for (let i = 0; i < 2000; i++) {
    const s = randomSerial()
    assert.equal(s.der.length, 18)
    assert.equal(s.der[1], 16)
    assert.match(s.hex, /^[4-7][0-9a-f]{31}$/)
    assert.equal(serialHexOf(s.der.subarray(2)), s.hex)
    seen.add(s.hex)
  }
  assert.equal(seen.size, 2000)
  assert.equal(serialHexOf(Buffer.from('00ff01', 'hex')), 'ff01')
  assert.equal(serialHexOf(Buffer.from('0001', 'hex')), '0001')
})

test('IP addresses parse to 4 or 16 octets; junk is refused', () => {
  const ok: Array<[string, string]> = [
    ['127.0.0.1', '7f000001'],
    ['::1', '00000000000000000000000000000001'],
    ['2001:db8::8:800:200c:417a', '20010db80000000000080800200c417a'],
    ['::ffff:192.0.2.1', '00000000000000000000ffffc0000201'],
    ['fe80:0:0:0:0:0:0:1', 'fe800000000000000000000000000001'],
  ]
  for (const [text, hex] of ok) assert.equal(parseIpAddress(text).toString('hex'), hex, text)
  for (const bad of ['256.0.0.1', '1.2.3', '01.2.3.4', ':::1', '1::2::3', '1:2:3:4:5:6:7:8:9', 'localhost', '1.2.3.4::1', '']) {
    assertAppError(() => parseIpAddress(bad), 'ERR_PKI_INVALID_ARGUMENT', /IP address/)
  }
})

test('DNS names and common names are validated', () => {
  for (const good of ['localhost', 'mqtt.example.com', '*.example.com', 'a-b.c0']) assertDnsName(good)
  for (const bad of ['-a.com', 'a..b', '*', 'a.*.b', 'a_b.com', 'x'.repeat(64) + '.com']) assertAppError(() => assertDnsName(bad), 'ERR_PKI_INVALID_ARGUMENT', /DNS name/)
  assertCommonName('x'.repeat(64))
  assertAppError(() => assertCommonName('x'.repeat(65)), 'ERR_PKI_INVALID_ARGUMENT', /longer than 64/)
  assertAppError(() => assertCommonName(''), 'ERR_PKI_INVALID_ARGUMENT', /non-empty/)
  assertAppError(() => assertCommonName('a\nb'), 'ERR_PKI_INVALID_ARGUMENT', /control characters/)
})

test('names print in RFC 4514 order with escaping; CN replacement keeps the other RDNs', () => {
  const name = buildName([{ typeDer: OID.organizationName, value: 'Acme, Inc' }, { typeDer: OID.commonName, value: ' dev+1' }])
  assert.equal(formatName(name), 'CN=\\ dev\\+1,O=Acme\\, Inc')
  const replaced = replaceCommonName(name, readTlv(name, 0), 'thing-7')
  assert.equal(formatName(replaced), 'CN=thing-7,O=Acme\\, Inc')
  const noCn = seq()
  assert.equal(formatName(replaceCommonName(noCn, readTlv(noCn, 0), 'x')), 'CN=x')
})
