/**
 * What the tests need beyond `npm ci`, set up once and idempotently, so `npm test` is the whole set-up on a fresh
 * machine (README): SST's platform in .sst/platform (from npm; no Pulumi binary needed), and a Python with
 * `moto[server]` (the AWS tests' emulator) and numpy (the bench's tests). A Python that already has them is used
 * as is; otherwise a venv under test/.venv (git-ignored) gets them from pip. Each step says what to install when
 * it cannot be done here.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { delimiter, join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..", "..");
const VENV = join(ROOT, "test", ".venv");
const VENV_BIN = join(VENV, "bin");
const LOCK = join(ROOT, "test", ".setup.lock");

export class SetupError extends Error {}

function ok(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): boolean {
  const r = spawnSync(cmd, args, { stdio: "ignore", env });
  return !r.error && r.status === 0;
}

function run(what: string, cmd: string, args: string[], hint: string, log: (s: string) => void): void {
  log(`test setup: ${what}`);
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: ["ignore", "inherit", "inherit"] });
  if (r.error || r.status !== 0) throw new SetupError(`test setup: ${what} failed; ${hint}`);
}

/** Held across processes (two `npm test` at once on one checkout); a lock older than 15 minutes is stale. */
function withLock<T>(fn: () => T): T {
  for (let waited = 0; ; waited += 200) {
    try {
      mkdirSync(LOCK);
      break;
    } catch {
      try {
        if (Date.now() - statSync(LOCK).mtimeMs > 15 * 60_000) rmSync(LOCK, { recursive: true, force: true });
      } catch {
        // released meanwhile
      }
      if (waited > 20 * 60_000) throw new SetupError(`test setup: ${LOCK} is held by another run; remove it if none is running`);
      spawnSync("sleep", ["0.2"]);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

export function sstPlatformReady(): boolean {
  return existsSync(join(ROOT, ".sst", "platform", "node_modules", "@pulumi", "pulumi", "package.json"));
}

function ensureSstPlatform(log: (s: string) => void): void {
  if (sstPlatformReady()) return;
  run(
    "sst install (SST's platform and providers, from npm; once)",
    "npm",
    ["run", "--silent", "sst:install"],
    "it needs only the npm registry: check that `npm ci` succeeded and the registry is reachable",
    log,
  );
  if (!sstPlatformReady()) throw new SetupError("test setup: sst install finished but .sst/platform is still missing");
}

/** The Python tools: on PATH already, or in test/.venv. Returns the directory to put first on PATH, if any. */
function ensurePythonTools(log: (s: string) => void): string | undefined {
  const venvPath = `${VENV_BIN}${delimiter}${process.env.PATH ?? ""}`;
  const venvEnv = { ...process.env, PATH: venvPath };
  const haveMoto = (env: NodeJS.ProcessEnv) => ok("moto_server", ["--help"], env);
  const haveNumpy = (env: NodeJS.ProcessEnv) => ok("python3", ["-c", "import numpy"], env);
  if (haveMoto(process.env) && haveNumpy(process.env)) return undefined;
  if (existsSync(VENV_BIN) && haveMoto(venvEnv) && haveNumpy(venvEnv)) return VENV_BIN;
  if (!ok("python3", ["--version"])) throw new SetupError("test setup: python3 not found; install Python 3 with venv and pip (Debian: apt-get install python3 python3-venv)");
  if (!existsSync(join(VENV_BIN, "python3")))
    run("python3 -m venv test/.venv", "python3", ["-m", "venv", VENV], "install Python's venv module (Debian: apt-get install python3-venv)", log);
  run(
    "pip install 'moto[server]' numpy into test/.venv (once; a minute or two)",
    join(VENV_BIN, "python3"),
    ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "moto[server]", "numpy"],
    "pip could not install them: install them yourself (pip install 'moto[server]' numpy) so that moto_server is on PATH",
    log,
  );
  if (!haveMoto(venvEnv) || !haveNumpy(venvEnv)) throw new SetupError("test setup: test/.venv has no working moto_server and numpy after pip install");
  return VENV_BIN;
}

/** Sets up what is missing and puts the venv (when used) first on this process's PATH, for the test workers. */
export function ensureTestTools(log: (s: string) => void = (s) => process.stderr.write(`${s}\n`)): void {
  const bin = withLock(() => {
    ensureSstPlatform(log);
    return ensurePythonTools(log);
  });
  if (bin && !(process.env.PATH ?? "").split(delimiter).includes(bin)) process.env.PATH = `${bin}${delimiter}${process.env.PATH ?? ""}`;
}
