import type { Command } from 'commander'
import { readFileSync } from 'node:fs'
import { AppError } from '../core/index.ts'
import type { ApiClient } from './client.ts'
import { seg } from './client.ts'
import type { CliIo } from './program.ts'

/** What the schema commands need from the program. */
export interface SchemaCliContext {
  readonly io: CliIo
  readonly clientFor: (o: object) => ApiClient
  /** Adds --endpoint, --ca-file and --data to a command. */
  readonly apiOpts: (c: Command) => Command
}

function readJson (file: string, what: string): unknown {
  let text: string
  try { text = readFileSync(file, 'utf8') } catch {
    throw new AppError('ERR_SCHEMA_INVALID', `cannot read the ${what} file`, { file })
  }
  try { return JSON.parse(text) } catch {
    throw new AppError('ERR_SCHEMA_INVALID', `the ${what} file is not valid JSON`, { file })
  }
}

/**
 * `thingward schemas …`: payload schemas (JSON Schema draft-07) attached to MQTT topic filters, through the
 * /thingward/payload-schemas API. A publish (MQTT or HTTPS) on a matching topic must validate, or it is refused.
 */
export function registerSchemaCommands (program: Command, ctx: SchemaCliContext): void {
  const { io, clientFor, apiOpts } = ctx
  const print = (v: unknown): void => { io.stdout(`${JSON.stringify(v, null, 2)}\n`) }
  const schemas = program.command('schemas').description('payload schemas: JSON Schemas that publishes on a topic filter must satisfy')

  apiOpts(schemas.command('put <name>')).description('create or replace a schema')
    .requiredOption('--topic-filter <filter>', 'MQTT topic filter (+ and # allowed), e.g. building/+/floor/+/temperature/+')
    .requiredOption('--schema-file <file>', 'the JSON Schema (draft-07)')
    .option('--description <text>')
    .action(async (name: string, o: { topicFilter: string, schemaFile: string, description?: string } & Record<string, string>) => {
      const schema = readJson(o.schemaFile, 'schema')
      print(await clientFor(o).call('PUT', `/thingward/payload-schemas/${seg(name)}`, { body: { topicFilter: o.topicFilter, schema, description: o.description } }))
    })

  apiOpts(schemas.command('get <name>')).description('show a schema')
    .action(async (name: string, o: Record<string, string>) => { print(await clientFor(o).call('GET', `/thingward/payload-schemas/${seg(name)}`)) })

  apiOpts(schemas.command('list')).description('list schemas')
    .action(async (o: Record<string, string>) => { print(await clientFor(o).call('GET', '/thingward/payload-schemas')) })

  apiOpts(schemas.command('delete <name>')).description('remove a schema (publishes on its filter are no longer checked)')
    .action(async (name: string, o: Record<string, string>) => { await clientFor(o).call('DELETE', `/thingward/payload-schemas/${seg(name)}`) })

  apiOpts(schemas.command('test <name>')).description('check a JSON payload against a schema without publishing (non-zero exit when it does not match)')
    .option('--payload <json>', 'the payload, inline').option('--payload-file <file>', 'the payload, from a file')
    .action(async (name: string, o: { payload?: string, payloadFile?: string } & Record<string, string>) => {
      let body: unknown
      if (o.payloadFile !== undefined) body = readJson(o.payloadFile, 'payload')
      else if (o.payload !== undefined) {
        try { body = JSON.parse(o.payload) } catch { throw new AppError('ERR_SCHEMA_INVALID', 'the payload is not valid JSON', { field: 'payload' }) }
      } else throw new AppError('ERR_SCHEMA_INVALID', 'give --payload or --payload-file', { field: 'payload' })
      const r = await clientFor(o).call<{ valid: boolean, schemaPath?: string, instancePath?: string }>('POST', `/thingward/payload-schemas/${seg(name)}/test`, { body })
      print(r)
      if (!r.valid) {
        throw new AppError('ERR_SCHEMA_PAYLOAD_REJECTED', 'the payload does not match the schema', { schemaPath: r.schemaPath ?? '#', instancePath: r.instancePath ?? '' })
      }
    })
}
