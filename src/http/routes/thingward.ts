import type { FastifyPluginAsync } from 'fastify'
import type { HttpDeps } from '../server.ts'
import { jsonBody } from '../server.ts'
import { qInt } from './shapes.ts'
import { formatBlastRadiusReport } from '../../policy/index.ts'

/** Thingward's own operations, under a prefix AWS does not use. */
export const thingwardRoutes: FastifyPluginAsync<{ deps: HttpDeps }> = async (app, { deps }) => {
  /** Bulk provisioning: things + ACTIVE certificates + role policy in one transaction per batch. */
  app.post('/thingward/provision', async (req) => {
    const b = jsonBody(req)
    const devices = await deps.provisioning.provision(req.caller, { policyName: b.policyName, thingTypeName: b.thingTypeName, items: b.items })
    return { devices }
  })

  app.get('/thingward/ca', async () => ({ caChainPem: await deps.certificates.caChainPem() }))

  /** Policy lint: a stored policy's default version, or a document not stored yet. */
  app.get('/thingward/policies/:policyName/lint', async (req) => deps.authorization.lint({ policyName: (req.params as Record<string, string>).policyName }))
  app.post('/thingward/policy-lint', async (req) => deps.authorization.lint({ policyDocument: jsonBody(req).policyDocument }))

  /** MFA-gated command topics: the filters, and the public keys devices verify command tokens with. */
  if (deps.commands !== undefined) {
    const commands = deps.commands
    app.get('/thingward/sensitive-topics', async () => ({ filters: commands.sensitiveFilters }))
    app.put('/thingward/sensitive-topics', async (req) => ({ filters: await commands.setSensitiveFilters(req.caller, jsonBody(req).filters) }))
    app.get('/thingward/command-keys', async () => commands.jwks())
  }

  /** Fleet blast radius over the registry, principals ranked by reach (largest first). */
  app.get('/thingward/blast-radius', async (req) => {
    const top = qInt(req, 'top')
    const report = await deps.authorization.blastRadius()
    return { ...report, principals: top === undefined ? report.principals : report.principals.slice(0, top), lines: formatBlastRadiusReport(report, { top: top ?? 20 }) }
  })
}
