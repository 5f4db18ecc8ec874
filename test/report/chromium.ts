/**
 * Real headless Chromium for the browser tests: Debian's `chromium` package driven by playwright-core. If it
 * is missing and we are root (as in CI), it is installed once with apt-get under a machine-wide lock, so test
 * files (or several checkouts) starting together do not race apt; otherwise the error says what to install.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium, type BrowserContext } from "playwright-core";

const LOCK = "/tmp/canopy-chromium-install.lock";
const NEEDED = "these tests need Debian's chromium: run `apt-get update && apt-get install -y chromium` (as root)";

function which(command: string): string | undefined {
  const found = spawnSync("sh", ["-c", `command -v ${command}`], { encoding: "utf8" });
  return found.status === 0 ? found.stdout.trim() || undefined : undefined;
}

/** The chromium binary, installing the package first when it is missing and we may. Throws one line otherwise. */
export function chromiumPath(): string {
  const present = which("chromium");
  if (present) return present;
  if (process.getuid?.() !== 0 || !which("apt-get") || !which("flock")) throw new Error(NEEDED);
  // Under the lock, check again: whoever held it may have installed it meanwhile.
  const script = "command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 chromium; }";
  try {
    execFileSync("flock", ["-w", "900", LOCK, "sh", "-c", script], { stdio: ["ignore", "ignore", "pipe"], timeout: 1_000_000 });
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? "").trim().split("\n").at(-1);
    throw new Error(`${NEEDED}; installing it failed${stderr ? `: ${stderr}` : ""}`);
  }
  const installed = which("chromium");
  if (!installed) throw new Error(NEEDED);
  return installed;
}

export interface Headless {
  context: BrowserContext;
  close(): Promise<void>;
}

/**
 * Launches chromium headless with a fresh, empty profile (Playwright takes the profile directory as
 * launchPersistentContext's argument rather than as --user-data-dir), no sandbox (root in CI), no GPU, no
 * background traffic.
 */
export async function launchChromium(): Promise<Headless> {
  const profile = mkdtempSync(path.join(tmpdir(), "canopy-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath(),
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
    viewport: { width: 1100, height: 900 },
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
