import { test } from 'node:test'
import assert from 'node:assert/strict'
import { certificateActor, GatewayAuditAction, GatewayAuditOutcome } from '../core/index.ts'
import { gatewayEvent } from './sources.ts'

test('a gateway event without a principal names the device by its certificate, as the HTTPS data plane does', () => {
  const fp = 'AB:CD:EF:01'
  const e = gatewayEvent({ action: GatewayAuditAction.Connect, outcome: GatewayAuditOutcome.Denied, timeMs: 1, reason: 'certificate-revoked', certificateFingerprint256: fp })
  assert.equal(e.actor, 'cert/abcdef01')
  assert.equal(e.actor, certificateActor(fp))
  assert.equal(gatewayEvent({ action: GatewayAuditAction.Connect, outcome: GatewayAuditOutcome.Denied, timeMs: 1, reason: 'tls-handshake-failed' }).actor, 'anonymous')
})
