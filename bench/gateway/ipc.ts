/**
 * Typed request/response over a Node IPC channel, for the gateway bench: the orchestrator drives the load
 * generator and the Thingward broker process with it. Every call has a time limit.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'

/** Commands a process serves: request and response shape per command name. */
export type Api = Record<string, { req: unknown, res: unknown }>

interface Request { readonly id: number, readonly cmd: string, readonly args: unknown }
interface Response { readonly id: number, readonly ok: boolean, readonly value?: unknown, readonly error?: string }

function isResponse (m: unknown): m is Response {
  return typeof m === 'object' && m !== null && typeof (m as { id?: unknown }).id === 'number' && typeof (m as { ok?: unknown }).ok === 'boolean'
}

function isRequest (m: unknown): m is Request {
  return typeof m === 'object' && m !== null && typeof (m as { id?: unknown }).id === 'number' && typeof (m as { cmd?: unknown }).cmd === 'string'
}

/**
 * Starts a Node script as a child with an IPC channel, through `sh` so the open-files limit can be raised to the
 * hard limit first (10,000 sockets need more than the usual 1,024). The child's stdout goes to our stderr.
 */
export function spawnNode (script: string, execArgv: readonly string[] = [], env: Readonly<Record<string, string>> = {}): ChildProcess {
  return spawn('sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', process.execPath, ...execArgv, script], {
    stdio: ['ignore', 2, 2, 'ipc'],
    env: { ...process.env, ...env },
  })
}

/** The caller's side. */
export class RpcClient<A extends Api> {
  readonly child: ChildProcess
  #next = 1
  readonly #pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void, timer: NodeJS.Timeout }>()

  constructor (child: ChildProcess, name: string) {
    this.child = child
    child.on('message', (m: unknown) => {
      if (!isResponse(m)) return
      const p = this.#pending.get(m.id)
      if (p === undefined) return
      this.#pending.delete(m.id)
      clearTimeout(p.timer)
      if (m.ok) p.resolve(m.value)
      else p.reject(new Error(`${name}: ${m.error ?? 'failed'}`))
    })
    child.on('exit', (code, signal) => {
      for (const p of this.#pending.values()) { clearTimeout(p.timer); p.reject(new Error(`${name} exited (${code ?? signal})`)) }
      this.#pending.clear()
    })
  }

  call<K extends keyof A & string> (cmd: K, args: A[K]['req'], timeoutMs: number): Promise<A[K]['res']> {
    const id = this.#next++
    return new Promise<A[K]['res']>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new Error(`${cmd}: no answer within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#pending.set(id, { resolve: v => resolve(v as A[K]['res']), reject, timer })
      const req: Request = { id, cmd, args }
      this.child.send(req)
    })
  }
}

/** The served side: answers each request with its handler's result; exits when the parent goes away. */
export function serve<A extends Api> (handlers: { [K in keyof A]: (args: A[K]['req']) => Promise<A[K]['res']> }): void {
  const send = process.send?.bind(process)
  if (send === undefined) throw new Error('this script runs as a child of bench/gateway.ts (no IPC channel)')
  process.on('message', (m: unknown) => {
    if (!isRequest(m)) return
    const handler = (handlers as Record<string, ((args: unknown) => Promise<unknown>) | undefined>)[m.cmd]
    if (handler === undefined) { send({ id: m.id, ok: false, error: `unknown command ${m.cmd}` }); return }
    handler(m.args).then(
      (value) => { send({ id: m.id, ok: true, value }) },
      (err: unknown) => { send({ id: m.id, ok: false, error: err instanceof Error ? err.stack ?? err.message : String(err) }) },
    )
  })
  process.on('disconnect', () => { process.exit(0) })
}

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes on one host. */
export const absNowMs = (): number => performance.timeOrigin + performance.now()
