/**
 * The payload-schema hook: adapts the shadow module's compiled schema set to the gateway's `PayloadValidator`
 * port. The accepted case returns one frozen decision (no allocation per message); a refusal names the schema,
 * the failed schema path and the payload location for the audit log, and gives the client a fixed reason string.
 */
import { describeRejection } from '../shadow/index.ts'
import type { PayloadVerdict } from '../shadow/index.ts'
import type { PayloadDecision, PayloadValidator } from './ports.ts'

/** Audit reason and denial-metric key for a refused payload. */
export const PAYLOAD_SCHEMA_REASON = 'payload-schema-mismatch'
/** MQTT 5 Reason String sent with PUBACK 0x99 (fixed text: never the schema or the payload). */
export const PAYLOAD_SCHEMA_REASON_STRING = 'Payload does not match the topic schema'

const ALLOWED: PayloadDecision = Object.freeze({ allowed: true })

/** Wraps anything with a synchronous `validate(topic, payload)` (the PayloadSchemaService) as the gateway hook. */
export function payloadSchemaValidator (schemas: { validate (topic: string, payload: Uint8Array): PayloadVerdict }): PayloadValidator {
  return {
    validate (topic: string, payload: Buffer): PayloadDecision {
      const v = schemas.validate(topic, payload)
      if (v.allowed) return ALLOWED
      return { allowed: false, reason: PAYLOAD_SCHEMA_REASON, statement: describeRejection(v), reasonString: PAYLOAD_SCHEMA_REASON_STRING }
    },
  }
}
