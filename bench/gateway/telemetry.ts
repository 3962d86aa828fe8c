/**
 * The 1 KB JSON telemetry payload and its schema, shared by the payload-schema measurements: bench/schemas.ts
 * (a few connections saturating one gateway) and bench/gateway.ts (the 500-device fan-in). The payload carries a
 * `trace` string that the load generator overwrites per message with the send time and a sequence number, so a
 * subscriber can check delivery while the payload stays valid JSON that conforms to the schema.
 */

/** A realistic telemetry schema: required fields, types, ranges, a pattern, an enum and a numeric array. */
export const TELEMETRY_SCHEMA = {
  type: 'object',
  required: ['deviceId', 'ts', 'temp', 'humidity', 'samples'],
  additionalProperties: false,
  properties: {
    deviceId: { type: 'string', pattern: '^sensor-[0-9]{4}$' },
    trace: { type: 'string' },
    ts: { type: 'integer', minimum: 0 },
    temp: { type: 'number', minimum: -50, maximum: 100 },
    humidity: { type: 'number', minimum: 0, maximum: 100 },
    battery: { type: 'integer', minimum: 0, maximum: 100 },
    status: { enum: ['ok', 'degraded', 'fault'] },
    samples: { type: 'array', maxItems: 200, items: { type: 'number' } },
    note: { type: 'string', maxLength: 1024 },
  },
} as const

export const TELEMETRY_PAYLOAD_BYTES = 1024
const TRACE_HEX = 24
const TRACE_KEY = '"trace":"'

/** A conforming payload of exactly 1024 bytes (trace all zeros). */
export function telemetryPayload (): Buffer {
  const doc = {
    deviceId: 'sensor-0001', trace: '0'.repeat(TRACE_HEX), ts: 1767225600000, temp: 21.5, humidity: 40.25, battery: 87, status: 'ok',
    samples: Array.from({ length: 80 }, (_, i) => 20 + (i % 10) / 10), note: '',
  }
  doc.note = 'x'.repeat(TELEMETRY_PAYLOAD_BYTES - Buffer.byteLength(JSON.stringify(doc)))
  const b = Buffer.from(JSON.stringify(doc))
  if (b.length !== TELEMETRY_PAYLOAD_BYTES) throw new Error(`payload is ${b.length} bytes`)
  return b
}

/** Offset of the trace's 24 hex digits in {@link telemetryPayload}. */
export const TRACE_AT = telemetryPayload().indexOf(TRACE_KEY) + TRACE_KEY.length

/** Writes the send time (float64 bits) and a sequence number as 24 lower-case hex digits at `at`. */
export function writeTrace (b: Buffer, at: number, sentAtMs: number, seq: number): void {
  const raw = Buffer.allocUnsafe(12)
  raw.writeDoubleLE(sentAtMs, 0)
  raw.writeUInt32LE(seq, 8)
  b.write(raw.toString('hex'), at, TRACE_HEX, 'latin1')
}

/** Reads what {@link writeTrace} wrote. */
export function readTrace (b: Buffer, at: number): { sentAtMs: number, seq: number } {
  const raw = Buffer.from(b.toString('latin1', at, at + TRACE_HEX), 'hex')
  return { sentAtMs: raw.readDoubleLE(0), seq: raw.readUInt32LE(8) }
}
