import { buildProgram } from './cli/program.ts'
import { SERVER_PROCESS_ENV } from './config/index.ts'
import { AppError } from './core/index.ts'

// The server's allocator settings must be in the environment before the process starts (glibc reads them once):
// `serve` re-executes itself, same PID, with whichever of them the operator did not set.
if (process.platform === 'linux' && process.argv.slice(2).includes('serve') && typeof process.execve === 'function') {
  const missing = Object.entries(SERVER_PROCESS_ENV).filter(([k]) => process.env[k] === undefined)
  if (missing.length > 0) {
    try {
      process.execve(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], { ...process.env, ...Object.fromEntries(missing) })
    } catch (err) {
      // Not fatal: the server runs with glibc's defaults (more resident memory per idle TLS connection).
      process.stderr.write(`thingward: could not apply the server's allocator settings (${err instanceof Error ? err.message : String(err)}); continuing\n`)
    }
  }
}

/** Process entry: the only place that reads process.env, argv and signals (DESIGN.md §4). */
const shutdown: Array<() => Promise<void>> = []
const program = buildProgram({
  env: process.env,
  cwd: process.cwd(),
  stdout: (s) => { process.stdout.write(s) },
  stderr: (s) => { process.stderr.write(s) },
  isTty: process.stderr.isTTY === true,
  progressStream: process.stderr,
  setExitCode: (code) => { process.exitCode = code },
  onShutdown: (fn) => { shutdown.push(fn) },
})

let stopping = false
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) return
    stopping = true
    Promise.all(shutdown.map(fn => fn())).then(() => process.exit(0), (err: unknown) => {
      process.stderr.write(`shutdown failed: ${err instanceof Error ? err.message : String(err)}\n`)
      process.exit(1)
    })
  })
}

try {
  await program.parseAsync(process.argv)
} catch (err) {
  if (err instanceof AppError) {
    // Details hold identifiers (paths, modes, fields), never secrets (DESIGN.md §5), so they help the operator.
    const details = Object.entries(err.details).map(([k, v]) => `${k}=${String(v)}`).join(' ')
    process.stderr.write(`thingward: ${err.message} [${err.code}]${details === '' ? '' : ` (${details})`}\n`)
    process.exitCode = 2
  } else if (err instanceof Error && err.name === 'ApiError') {
    process.stderr.write(`thingward: ${err.message}\n`)
    process.exitCode = 1
  } else {
    throw err
  }
}
