/**
 * Where the adapters find their resource names. Deployed, they come from SST's linked resources
 * (`Resource.<Link>` from the `sst` package); against an emulator, from CANOPY_* environment variables (both
 * named in names.ts). `sst` is imported lazily and only if installed, so nothing here depends on it.
 */
import { AwsSetupError } from "./errors.ts";
import { RESOURCE_ENV, RESOURCE_LINKS, type AwsResources, type ResourceName } from "./names.ts";

export { RESOURCE_ENV, RESOURCE_LINKS, type AwsResources, type ResourceName } from "./names.ts";

/**
 * Loads SST's `Resource`. Wrapped in an object: `Resource` is a proxy that throws for unknown names, `then`
 * included, so resolving a promise with it directly would throw.
 */
export type SstResourceLoader = () => Promise<{ Resource: Record<string, unknown> } | undefined>;

/** `Resource` from the `sst` package, or undefined when the package is not installed. */
export const loadSstResource: SstResourceLoader = async () => {
  const specifier = "sst"; // a variable, so TypeScript and bundlers do not require the package
  try {
    const mod = (await import(specifier)) as { Resource?: Record<string, unknown> };
    return mod.Resource ? { Resource: mod.Resource } : undefined;
  } catch (err) {
    if ((err as { code?: string }).code === "ERR_MODULE_NOT_FOUND") return undefined;
    throw err;
  }
};

function fromSst(resource: Record<string, unknown> | undefined, name: ResourceName): string | undefined {
  if (!resource) return undefined;
  const { link, property } = RESOURCE_LINKS[name];
  let linked: unknown;
  try {
    linked = resource[link]; // SST's Resource proxy throws for links this function does not have
  } catch {
    return undefined;
  }
  const value = (linked as Record<string, unknown> | undefined)?.[property];
  return typeof value === "string" && value !== "" ? value : undefined;
}

/**
 * Resolves the named resources: CANOPY_* variables first, then SST links. Throws one line naming every
 * resource it could not find.
 */
export async function resolveResources<K extends ResourceName>(
  names: readonly K[],
  options: { env?: NodeJS.ProcessEnv; loadSst?: SstResourceLoader } = {},
): Promise<Pick<AwsResources, K>> {
  const env = options.env ?? process.env;
  const missingFromEnv = names.filter((n) => !env[RESOURCE_ENV[n]]);
  const sst = missingFromEnv.length > 0 ? (await (options.loadSst ?? loadSstResource)())?.Resource : undefined;
  const out: Partial<AwsResources> = {};
  const missing: string[] = [];
  for (const name of names) {
    const value = env[RESOURCE_ENV[name]] || fromSst(sst, name);
    if (value) out[name] = value;
    else missing.push(`${name} (set ${RESOURCE_ENV[name]} or link ${RESOURCE_LINKS[name].link})`);
  }
  if (missing.length > 0) throw new AwsSetupError(`AWS resources not configured: ${missing.join(", ")}`);
  return out as Pick<AwsResources, K>;
}
