/**
 * Evaluates the SST app the way `sst deploy` does, minus the cloud: bundles sst.config.ts exactly as the SST
 * CLI does (the same esbuild entry, injected shim, defines, externals and globals plugin), runs the bundle inside
 * Pulumi's stack runner with `runtime.setMocks` instead of an engine, and answers the CLI's local RPC endpoint
 * itself, so every function's handler is really bundled with esbuild. Writes what it saw as JSON.
 *
 * One evaluation per process (Pulumi's runtime state is global). Usage, from the repo (test/infra/harness.ts):
 *   node --import tsx test/infra/run-app.ts <root> <report.json>
 * Needs `sst install` to have populated <root>/.sst/platform.
 */
import { createCipheriv } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";

/** The part of @pulumi/pulumi used here (it is installed in .sst/platform, out of this program's reach). */
interface PulumiRuntime {
  runtime: {
    setMocks(
      mocks: {
        newResource(args: { type: string; name: string; inputs: any; custom?: boolean }): { id?: string; state: Record<string, any> };
        call(args: { token: string; inputs: any }): Record<string, any>;
      },
      project?: string,
      stack?: string,
      preview?: boolean,
    ): Promise<void>;
    runInPulumiStack(init: () => Promise<any>): Promise<Record<string, unknown> | undefined>;
    /** Waits for every outstanding resource registration, then detaches. */
    disconnect(): Promise<void>;
  };
}

export const MOCK_ACCOUNT = "123456789012";
export const MOCK_REGION = "us-east-1";

export interface RecordedResource {
  type: string;
  name: string;
  custom: boolean;
  inputs: Record<string, any>;
  /** The mocked provider's answer: physical name, ARN, URL, stream ARN. */
  state: { name?: string; bucket?: string; arn?: string; url?: string; streamArn?: string };
}
export interface RecordedBuild {
  functionID: string;
  handler: string;
  /** The handler module esbuild started from, relative to the root. */
  entry: string;
  /** The handler Lambda runs, relative to the bundle directory. */
  builtHandler: string;
  bundleBytes: number;
  /** The npm packages whose code is in the bundle (from esbuild's metafile), sorted. */
  packages: string[];
  links: string[];
}
export interface AppReport {
  stage: string;
  outputs: Record<string, unknown>;
  resources: RecordedResource[];
  calls: { token: string; inputs: Record<string, any> }[];
  builds: RecordedBuild[];
  /** functionID → size of the code.zip SST uploads. */
  zips: Record<string, number>;
  errors: string[];
}

// The CLI's esbuild banner (pkg/js and pkg/runtime/node): ESM bundles that still have require and __dirname.
export const BANNER = [
  `import { createRequire as topLevelCreateRequire } from 'module';`,
  `const require = topLevelCreateRequire(import.meta.url);`,
  `import { fileURLToPath as topLevelFileUrlToPath, URL as topLevelURL } from "url"`,
  `const __filename = topLevelFileUrlToPath(import.meta.url)`,
  `const __dirname = topLevelFileUrlToPath(new topLevelURL(".", import.meta.url))`,
].join("\n");
const NODE_EXTENSIONS = [".ts", ".tsx", ".mts", ".cts", ".js", ".jsx", ".mjs", ".cjs"];

/** npm package names of bundle inputs (paths as esbuild's metafile lists them: node_modules/<name or @scope/name>/...). */
export function bundledPackages(inputs: string[]): string[] {
  const names = new Set<string>();
  for (const input of inputs) {
    const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input.replaceAll("\\", "/"));
    if (m) names.add(m[1]);
  }
  return [...names].sort();
}

/** Pulumi secrets arrive wrapped in a signature object; reports want the plain value. */
function plain(value: unknown): any {
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (obj["4dabf18193072939515e22adb298388d"] === "1b47061264138c4ac30d75fd1eb44270") return plain(obj.value);
    return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

export async function runApp(root: string, reportPath: string): Promise<AppReport> {
  const platform = path.join(root, ".sst", "platform");
  if (!existsSync(path.join(platform, "node_modules", "@pulumi", "pulumi")))
    throw new Error(`${platform} has no Pulumi: run \`npm run sst:install\` first`);
  const requirePlatform = createRequire(path.join(platform, "package.json"));
  const esbuild = requirePlatform("esbuild") as typeof import("esbuild");
  const pulumi = requirePlatform("@pulumi/pulumi") as PulumiRuntime;

  // Function IDs embed hashes of randomly named resources, so old build directories would pile up here.
  rmSync(path.join(root, ".sst", "artifacts"), { recursive: true, force: true });
  const stage = process.env.SST_STAGE ?? "test";
  const report: AppReport = { stage, outputs: {}, resources: [], calls: [], builds: [], zips: {}, errors: [] };

  // ---- what `sst install` and the CLI know about the app: its name and the installed providers
  const { name: appName, ...appRest } = await readApp(root, esbuild);
  const providerLock = JSON.parse(readFileSync(path.join(root, ".sst", "provider-lock.json"), "utf8")) as {
    package: string;
    alias: string;
  }[];

  // ---- the CLI's local RPC endpoint: bootstrap data and function builds
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", async () => {
      const { method, params } = JSON.parse(body) as { method: string; params: any[] };
      let reply: { result?: unknown; error?: string };
      try {
        reply = { result: await rpc(method, params[0]) };
      } catch (err) {
        reply = { error: (err as Error).message };
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ id: 0, ...reply }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  process.env.SST_SERVER = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  async function rpc(method: string, input: any): Promise<unknown> {
    switch (method) {
      case "Provider.Aws.Bootstrap":
        return {
          asset: `sst-asset-mock-${input.region}`,
          assetEcrRegistryId: MOCK_ACCOUNT,
          assetEcrUrl: `${MOCK_ACCOUNT}.dkr.ecr.${input.region}.amazonaws.com/sst-asset`,
          state: `sst-state-mock-${input.region}`,
          appsyncHttp: "mock",
          appsyncRealtime: "mock",
        };
      case "Runtime.Build":
        return buildFunction(input);
      default:
        throw new Error(`rpc: can't find method ${method}`);
    }
  }

  /** The CLI's Node runtime build (pkg/runtime/node/build.go), with esbuild's JS API. */
  async function buildFunction(input: any) {
    if (input.bundle) return { handler: input.handler, out: input.bundle, errors: [], sourcemaps: [] };
    const props = input.properties ?? {};
    const handler: string = input.handler;
    const dir = path.dirname(handler);
    const base = path.basename(handler).split(".").slice(0, -1).join(".");
    const file = NODE_EXTENSIONS.map((ext) => path.resolve(root, dir, base + ext)).find((f) => existsSync(f));
    if (!file) throw new Error(`Handler not found: ${handler}`);

    const out = path.join(root, ".sst", "artifacts", `${input.functionID}-src`);
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out, { recursive: true });
    const rel = path.relative(root, file);
    const fileName = path.basename(rel, path.extname(rel)).replaceAll(".", "-");
    const target = path.join(path.dirname(rel), fileName);
    const esm = props.format !== "cjs";
    const outfile = path.join(out, target + (esm ? ".mjs" : ".cjs"));
    const result = await esbuild.build({
      entryPoints: [file],
      platform: "node",
      external: ["sharp", "pg-native", ...(props.install ?? []), ...(props.esbuild?.external ?? [])],
      keepNames: true,
      bundle: true,
      metafile: true,
      outfile,
      format: esm ? "esm" : "cjs",
      target: "esnext",
      mainFields: esm ? ["module", "main"] : ["main"],
      banner: { js: esm ? [BANNER, props.banner ?? ""].join("\n") : props.banner ?? "" },
      // Deploys are minified unless `nodejs.minify` is false, and carry source maps only if asked.
      minify: props.minify !== false,
      sourcemap: props.sourcemap ? "linked" : false,
      logLevel: "silent",
    }).catch((err: { errors?: { text: string; location?: { file: string; line: number } | null }[] }) => err);
    const errors = ("errors" in result ? result.errors ?? [] : []).map(
      (e) => e.text + (e.location ? ` ${e.location.file}:${e.location.line}` : ""),
    );
    if (errors.length > 0) return { handler, out, errors, sourcemaps: [] };

    // The links, encrypted the way `sst`'s Resource reads them (SST_KEY + SST_KEY_FILE, AES-256-GCM, zero nonce).
    const cipher = createCipheriv("aes-256-gcm", Buffer.from(input.encryptionKey, "base64"), Buffer.alloc(12, 0));
    const sealed = Buffer.concat([cipher.update(JSON.stringify(input.links ?? {})), cipher.final(), cipher.getAuthTag()]);
    writeFileSync(path.join(out, "resource.enc"), sealed);

    report.builds.push({
      functionID: input.functionID,
      handler,
      entry: rel,
      builtHandler: target + path.extname(handler),
      bundleBytes: statSync(outfile).size,
      packages: bundledPackages(Object.keys("metafile" in result && result.metafile ? result.metafile.inputs : {})),
      links: Object.keys(input.links ?? {}).sort(),
    });
    return { handler: target + path.extname(handler), out, errors: [], sourcemaps: [] };
  }

  // ---- bundle sst.config.ts as the CLI does (pkg/project/stack.go + pkg/js)
  const app = { name: appName, stage, removal: appRest.removal ?? "retain", protect: appRest.protect ?? false, home: "aws", providers: { aws: {} } };
  const cli = {
    command: "deploy",
    dev: false,
    paths: { home: path.join(tmpdir(), "canopy-sst-home"), root, work: path.join(root, ".sst"), platform },
    state: { version: {} },
  };
  const globals = [
    ...providerLock.map((p) => `import * as ${p.alias} from "${p.package}";`),
    `import * as sst from "${path.join(platform, "src/components")}";`,
  ].join("\n");
  const outfile = path.join(platform, `sst.config.${Date.now()}.${process.pid}.mjs`);
  await esbuild.build({
    stdin: {
      contents: [
        `import { run } from "${path.join(platform, "src/auto/run.ts")}";`,
        `import mod from "${root}/sst.config.ts";`,
        `const result = await run(mod.run);`,
        `export default result;`,
      ].join("\n"),
      resolveDir: root,
      sourcefile: "eval.ts",
      loader: "ts",
    },
    banner: { js: BANNER },
    mainFields: ["module", "main"],
    format: "esm",
    platform: "node",
    sourcemap: "linked",
    nodePaths: [path.join(platform, "node_modules")],
    plugins: [
      {
        name: "InjectGlobals",
        setup(build) {
          build.onLoad({ filter: /\.(js|ts|jsx|tsx)$/ }, (args) => {
            const contents = readFileSync(args.path, "utf8");
            return { contents: args.path.includes(".sst") ? contents : `${globals}\n${contents}`, loader: "default" };
          });
        },
      },
    ],
    external: ["@pulumi/*", "undici", "@pulumiverse/*", "@sst-provider/*", "@aws-sdk/*", "esbuild", "archiver", "glob", "vite"],
    define: { $app: JSON.stringify(app), $cli: JSON.stringify(cli), $dev: "false" },
    inject: [path.join(platform, "src/shim/run.js")],
    outfile,
    write: true,
    bundle: true,
    logLevel: "silent",
  });

  // ---- run it in Pulumi's stack runner against mocks
  const physical = (inputs: Record<string, any>, key: string, name: string) =>
    typeof inputs[key] === "string" && inputs[key] ? inputs[key] : `${appName}-${stage}-${name.toLowerCase()}`;
  const arn = (service: string, resource: string) => `arn:aws:${service}:${MOCK_REGION}:${MOCK_ACCOUNT}:${resource}`;
  await pulumi.runtime.setMocks(
    {
      newResource({ type, name, inputs, custom }) {
        const state: Record<string, any> = { ...inputs };
        switch (type) {
          case "aws:s3/bucket:Bucket":
          case "aws:s3/bucketV2:BucketV2": {
            state.bucket = physical(inputs, "bucket", name);
            state.arn = `arn:aws:s3:::${state.bucket}`;
            break;
          }
          case "aws:dynamodb/table:Table":
            state.name = physical(inputs, "name", name);
            state.arn = arn("dynamodb", `table/${state.name}`);
            if (inputs.streamEnabled) state.streamArn = `${state.arn}/stream/2026-01-01T00:00:00.000`;
            break;
          case "aws:sqs/queue:Queue":
            state.name = physical(inputs, "name", name);
            state.arn = arn("sqs", state.name);
            state.url = `https://sqs.${MOCK_REGION}.amazonaws.com/${MOCK_ACCOUNT}/${state.name}`;
            break;
          case "aws:sns/topic:Topic":
            state.name = physical(inputs, "name", name);
            state.arn = arn("sns", state.name);
            break;
          case "aws:lambda/function:Function":
            state.name = physical(inputs, "name", name);
            state.arn = arn("lambda", `function:${state.name}`);
            state.qualifiedArn = `${state.arn}:$LATEST`;
            state.invokeArn = `arn:aws:apigateway:${MOCK_REGION}:lambda:path/2015-03-31/functions/${state.arn}/invocations`;
            break;
          case "aws:lambda/functionUrl:FunctionUrl":
            // Lambda's URL shape, so a client can derive the signing region from it.
            state.functionUrl = `https://${name.toLowerCase().replace(/[^a-z0-9]/g, "")}.lambda-url.${MOCK_REGION}.on.aws/`;
            state.url = state.functionUrl;
            break;
          case "aws:iam/role:Role":
            state.name = physical(inputs, "name", name);
            state.arn = `arn:aws:iam::${MOCK_ACCOUNT}:role/${state.name}`;
            break;
          case "random:index/randomBytes:RandomBytes": {
            const bytes = Buffer.alloc(inputs.length ?? 32, 7);
            state.base64 = bytes.toString("base64");
            state.hex = bytes.toString("hex");
            break;
          }
          default:
            state.arn ??= arn(type.split(":")[1]?.split("/")[0] ?? "mock", name);
        }
        const { name: physicalName, bucket, arn: stateArn, url, streamArn } = state;
        report.resources.push({
          type,
          name,
          custom: custom ?? false,
          inputs: plain(inputs),
          state: plain({ name: physicalName, bucket, arn: stateArn, url, streamArn }),
        });
        return { id: custom ? `${name}-id` : undefined, state };
      },
      call({ token, inputs }) {
        report.calls.push({ token, inputs: plain(inputs) });
        switch (token) {
          case "aws:index/getRegion:getRegion":
            return { id: MOCK_REGION, name: MOCK_REGION, region: MOCK_REGION, endpoint: `ec2.${MOCK_REGION}.amazonaws.com` };
          case "aws:index/getPartition:getPartition":
            return { id: "aws", partition: "aws", dnsSuffix: "amazonaws.com", reverseDnsPrefix: "com.amazonaws" };
          case "aws:index/getCallerIdentity:getCallerIdentity":
            return { id: MOCK_ACCOUNT, accountId: MOCK_ACCOUNT, arn: `arn:aws:iam::${MOCK_ACCOUNT}:user/mock`, userId: "mock" };
          case "aws:iam/getPolicyDocument:getPolicyDocument":
            return { id: "policy", json: JSON.stringify(policyDocument(inputs)), statements: inputs.statements };
          default:
            throw new Error(`no mock for the provider function ${token}`);
        }
      },
    },
    appName,
    stage,
    false,
  );

  // Every error the program reports goes through pulumi.log.error; keep them for the report.
  const log = requirePlatform("@pulumi/pulumi/log") as { error: (msg: string, ...rest: unknown[]) => Promise<void> };
  const logError = log.error;
  log.error = (msg: string, ...rest: unknown[]) => {
    report.errors.push(String(msg).split("\n")[0]);
    return logError(msg, ...rest);
  };
  process.on("unhandledRejection", (err) => report.errors.push(String((err as Error)?.message ?? err).split("\n")[0]));

  try {
    const outputs = await pulumi.runtime.runInPulumiStack(async () => (await import(pathToFileURL(outfile).href)).default);
    report.outputs = plain(outputs ?? {});
    // Resources created inside apply() (functions, mappings) register after the outputs resolve.
    await pulumi.runtime.disconnect();
  } catch (err) {
    report.errors.push((err as Error).message.split("\n")[0]);
  } finally {
    server.close();
    rmSync(outfile, { force: true });
    rmSync(`${outfile}.map`, { force: true });
  }

  for (const b of report.builds) {
    const zip = path.join(root, ".sst", "artifacts", b.functionID, "code.zip");
    if (existsSync(zip)) report.zips[b.functionID] = statSync(zip).size;
  }
  report.errors = [...new Set(report.errors)];
  writeFileSync(reportPath, JSON.stringify(report, null, 1));
  return report;
}

function policyDocument(inputs: { statements?: any[] }) {
  const list = (v: unknown) => (v === undefined ? undefined : Array.isArray(v) && v.length === 1 ? v[0] : v);
  return {
    Version: "2012-10-17",
    Statement: (inputs.statements ?? []).map((s) => ({
      Effect: s.effect ?? "Allow",
      Action: list(s.actions),
      Resource: list(s.resources),
      ...(s.principals
        ? { Principal: Object.fromEntries(s.principals.map((p: any) => [p.type, list(p.identifiers)])) }
        : {}),
      ...(s.conditions
        ? { Condition: Object.fromEntries(s.conditions.map((c: any) => [c.test, { [c.variable]: list(c.values) }])) }
        : {}),
    })),
  };
}

/** The app's name and policies from its app() function, which the CLI evaluates before anything else. */
async function readApp(root: string, esbuild: typeof import("esbuild")) {
  const out = await esbuild.build({
    stdin: {
      contents: `import mod from "${root}/sst.config.ts"; globalThis.__canopyApp = mod.app({ stage: process.env.SST_STAGE ?? "test" });`,
      resolveDir: root,
      loader: "ts",
    },
    banner: { js: "globalThis.$config = (c) => c;" },
    bundle: true,
    format: "esm",
    platform: "node",
    write: false,
    metafile: true,
    logLevel: "silent",
  });
  // The CLI rejects a config with top-level imports (they would run before the platform's globals exist).
  const config = Object.entries(out.metafile.inputs).find(([file]) => path.basename(file) === "sst.config.ts");
  const topLevel = (config?.[1].imports ?? []).filter((i) => i.kind === "import-statement");
  if (topLevel.length > 0)
    throw new Error(`sst.config.ts has top-level imports (${topLevel.map((i) => i.path).join(", ")}): import inside run()`);
  const url = `data:text/javascript;base64,${Buffer.from(out.outputFiles[0].text).toString("base64")}`;
  await import(url);
  const app = await (globalThis as any).__canopyApp;
  return app as { name: string; removal?: string; protect?: boolean };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [root, reportPath] = process.argv.slice(2);
  if (!root || !reportPath) {
    console.error("usage: run-app.ts <root> <report.json>");
    process.exit(2);
  }
  runApp(path.resolve(root), path.resolve(reportPath)).then(
    (r) => process.exit(r.errors.length > 0 ? 1 : 0),
    (err) => {
      console.error((err as Error).message);
      process.exit(1);
    },
  );
}
