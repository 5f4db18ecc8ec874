// Idempotent self-setup: a Python venv with scikit-learn, and Debian's Fashion-MNIST package.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

export const BENCH_DIR = "bench";
export const VENV_PYTHON = join(BENCH_DIR, ".venv", "bin", "python");

function run(cmd: string, args: string[], quiet = false): number {
  const r = spawnSync(cmd, args, { stdio: quiet ? "ignore" : ["ignore", "inherit", "inherit"] });
  if (r.error) return -1;
  return r.status ?? -1;
}

/** Returns the venv's python, creating the venv and installing scikit-learn + numpy only if they don't import. */
export function ensurePython(log: (s: string) => void = console.log): string {
  const importable = () => existsSync(VENV_PYTHON) && run(VENV_PYTHON, ["-c", "import sklearn, numpy"], true) === 0;
  if (importable()) return VENV_PYTHON;
  if (!existsSync(VENV_PYTHON)) {
    log("setup: creating bench/.venv");
    if (run("python3", ["-m", "venv", join(BENCH_DIR, ".venv")]) !== 0) {
      throw new Error("setup: `python3 -m venv bench/.venv` failed (is python3 with the venv module installed?)");
    }
  }
  log("setup: pip install scikit-learn numpy (about a minute)");
  if (run(VENV_PYTHON, ["-m", "pip", "install", "-q", "scikit-learn", "numpy"]) !== 0 || !importable()) {
    throw new Error("setup: could not install scikit-learn and numpy into bench/.venv");
  }
  return VENV_PYTHON;
}

/** Installs a package into the bench's venv unless it imports already (e.g. lightgbm for the categorical section). */
export function ensurePythonPackage(python: string, name: string, log: (s: string) => void = console.log): void {
  if (run(python, ["-c", `import ${name}`], true) === 0) return;
  log(`setup: pip install ${name}`);
  if (run(python, ["-m", "pip", "install", "-q", name]) !== 0) throw new Error(`setup: could not install ${name} into bench/.venv`);
}

const FM_PACKAGE = "dataset-fashion-mnist";

/** Makes sure Debian's Fashion-MNIST package is installed (installing it when we are root). */
export function ensureFashionMnist(log: (s: string) => void = console.log): void {
  if (run("dpkg", ["-s", FM_PACKAGE], true) === 0) return;
  if (process.getuid?.() !== 0) {
    throw new Error(`setup: Fashion-MNIST missing; run \`sudo apt-get install -y ${FM_PACKAGE}\``);
  }
  log(`setup: apt-get install ${FM_PACKAGE}`);
  if (run("apt-get", ["update", "-qq"]) !== 0 || run("apt-get", ["install", "-y", "-qq", FM_PACKAGE]) !== 0) {
    throw new Error(`setup: apt-get install ${FM_PACKAGE} failed`);
  }
}
