import { Agent } from 'node:https'
import type { TestContext } from 'node:test'
import { STSClient } from '@aws-sdk/client-sts'
import { IoTClient } from '@aws-sdk/client-iot'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { ApiClient } from '../../src/cli/client.ts'
import type { Clock } from '../../src/core/index.ts'
import { base32Decode, totp } from '../../src/iam/index.ts'
import type { TestPlatform } from './platform.ts'

/** Credentials as the AWS SDKs take them. */
export interface Creds { readonly accessKeyId: string, readonly secretAccessKey: string, readonly sessionToken?: string }

/** Our API client (JSON routes), signed with `creds` (admin by default). */
export function api (p: TestPlatform, creds: Creds = p.creds): ApiClient {
  return new ApiClient({ endpoint: p.endpoint, region: 'local-1', accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, sessionToken: creds.sessionToken, ca: p.caPem })
}

/** SDK clients trusting the test CA, one attempt (a refusal must not be retried into a lockout), clock-aligned with the server. */
export function sdk (t: TestContext, p: TestPlatform, clock?: Clock): { iot: (c: Creds) => IoTClient, sts: (c: Creds) => STSClient } {
  const agent = new Agent({ ca: p.caPem, keepAlive: true })
  const clients: Array<{ destroy (): void }> = []
  t.after(() => { for (const c of clients) c.destroy(); agent.destroy() })
  const common = (c: Creds): { endpoint: string, region: string, credentials: Creds, maxAttempts: number, systemClockOffset: number, requestHandler: NodeHttpHandler } => ({
    endpoint: p.endpoint, region: 'local-1', credentials: c, maxAttempts: 1, systemClockOffset: clock === undefined ? 0 : clock.nowMs() - Date.now(),
    requestHandler: new NodeHttpHandler({ httpsAgent: agent }),
  })
  return {
    iot: (c) => { const x = new IoTClient(common(c)); clients.push(x); return x },
    sts: (c) => { const x = new STSClient(common(c)); clients.push(x); return x },
  }
}

/** Creates a user with roles through the API (as the admin) and returns a new access key of it. */
export async function userWithKey (p: TestPlatform, userName: string, roles: readonly string[]): Promise<Creds> {
  const admin = api(p)
  await admin.call('POST', `/thingward/iam/users/${userName}`, { body: { roles } })
  const k = await admin.call<{ accessKeyId: string, secretAccessKey: string }>('POST', `/thingward/iam/users/${userName}/access-keys`)
  return { accessKeyId: k.accessKeyId, secretAccessKey: k.secretAccessKey }
}

/** The current TOTP code of a base32 secret, by the server's clock. */
export function code (secretBase32: string, clock: Clock, offsetMs = 0): string {
  const secret = base32Decode(secretBase32)
  if (secret === undefined) throw new Error('bad secret')
  return totp(secret, clock.nowMs() + offsetMs)
}

/** Enrolls MFA for a user through the API (as the admin) and returns the secret. */
export async function enrollMfa (p: TestPlatform, userName: string, clock: Clock): Promise<{ secret: string, recoveryCodes: string[] }> {
  const admin = api(p)
  const e = await admin.call<{ secretBase32: string }>('POST', `/thingward/iam/users/${userName}/mfa`)
  const r = await admin.call<{ recoveryCodes: string[] }>('POST', `/thingward/iam/users/${userName}/mfa/enable`, { body: { code: code(e.secretBase32, clock) } })
  return { secret: e.secretBase32, recoveryCodes: r.recoveryCodes }
}
