import type { FastifyPluginAsync } from 'fastify'
import type { HttpDeps } from '../server.ts'
import { jsonBody } from '../server.ts'

/** Thingward's own operations, under a prefix AWS does not use. */
export const thingwardRoutes: FastifyPluginAsync<{ deps: HttpDeps }> = async (app, { deps }) => {
  /** Bulk provisioning: things + ACTIVE certificates + role policy in one transaction per batch. */
  app.post('/thingward/provision', async (req) => {
    const b = jsonBody(req)
    const devices = await deps.provisioning.provision(req.caller, { policyName: b.policyName, thingTypeName: b.thingTypeName, items: b.items })
    return { devices }
  })

  app.get('/thingward/ca', async () => ({ caChainPem: await deps.certificates.caChainPem() }))
}
