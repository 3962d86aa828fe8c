import type { FastifyPluginAsync } from 'fastify'
import type { HttpDeps } from '../server.ts'

/**
 * Public PKI endpoints, unauthenticated by design (relying parties fetch them): the CA chain, the CRL
 * (RFC 5280 §5; DER as application/pkix-crl per RFC 2585 §4.2, and PEM) and the OCSP responder (RFC 6960
 * Appendix A: POST with application/ocsp-request, or GET with the base64 request in the path).
 */
export const pkiRoutes: FastifyPluginAsync<{ deps: HttpDeps }> = async (app, { deps }) => {
  app.get('/ca.pem', async (_req, reply) => reply.type('application/x-pem-file').send(await deps.certificates.caChainPem()))
  app.get('/crl', async (_req, reply) => reply.type('application/pkix-crl').send((await deps.certificates.crl()).der))
  app.get('/crl.pem', async (_req, reply) => reply.type('application/x-pem-file').send((await deps.certificates.crl()).pem))
  app.post('/ocsp', async (req, reply) => reply.type('application/ocsp-response').send(await deps.certificates.ocsp(req.rawBody)))
  app.get('/ocsp/*', async (req, reply) => {
    const encoded = (req.params as Record<string, string>)['*']
    const der = Buffer.from(decodeURIComponent(encoded), 'base64')
    return reply.type('application/ocsp-response').send(await deps.certificates.ocsp(der))
  })
}
