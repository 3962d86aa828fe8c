import type { FastifyPluginAsync } from 'fastify'
import type { PayloadSchemaService } from '../../shadow/index.ts'
import { jsonBody } from '../server.ts'
import { params } from './shapes.ts'

/**
 * Payload schemas, our own API (AWS has no equivalent, so it lives under /thingward): JSON Schemas (draft-07)
 * attached to MQTT topic filters; a PUBLISH over MQTT or HTTPS whose payload does not validate is refused.
 * - `GET /thingward/payload-schemas` → `{ payloadSchemas: [...] }`
 * - `PUT /thingward/payload-schemas/{name}` `{ topicFilter, schema, description? }` → the stored schema (create or replace)
 * - `GET|DELETE /thingward/payload-schemas/{name}`
 * - `POST /thingward/payload-schemas/{name}/test` with a payload as the body → `{ valid, schemaPath?, instancePath?, message? }`
 * Signed with SigV4 like every operator route; changes are audited (`thingward.PutPayloadSchema` …).
 */
export const payloadSchemaRoutes: FastifyPluginAsync<{ payloadSchemas: PayloadSchemaService }> = async (app, { payloadSchemas }) => {
  const name = (req: Parameters<typeof params>[0]): string => params(req).schemaName

  app.get('/thingward/payload-schemas', async () => ({ payloadSchemas: await payloadSchemas.list() }))

  app.put('/thingward/payload-schemas/:schemaName', async (req) => {
    const b = jsonBody(req)
    return payloadSchemas.put(req.caller, name(req), { topicFilter: b.topicFilter, schema: b.schema, description: b.description })
  })

  app.get('/thingward/payload-schemas/:schemaName', async (req) => payloadSchemas.get(name(req)))

  app.delete('/thingward/payload-schemas/:schemaName', async (req) => {
    await payloadSchemas.delete(req.caller, name(req))
    return {}
  })

  app.post('/thingward/payload-schemas/:schemaName/test', async (req) => {
    const v = payloadSchemas.test(name(req), req.rawBody)
    return v.allowed ? { valid: true } : { valid: false, schemaPath: v.schemaPath, instancePath: v.instancePath, message: v.message }
  })
}
