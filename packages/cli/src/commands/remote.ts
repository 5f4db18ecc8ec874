import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { readFile } from "node:fs/promises";
import { FailedError, fileError, UsageError } from "../errors.ts";
import { csvField, readFeatureCsv, type FeatureMatrix } from "../features.ts";
import { partitionedPredictionLines, readNamedTable, type NamedTable } from "../partitioned-table.ts";

export interface RemoteOptions {
  /** A URL, or an alias name (served by the URL in CANOPY_PREDICT_URL or the SST app's outputs). */
  remote: string;
  /** A build id or a partitioned run's id: pin the requests to it (?model=). */
  model?: string;
  proba?: boolean;
  /** A partitioned model: rows whose partition value has no model get an empty prediction instead of failing the run. */
  skipUnknown?: boolean;
  /** Most rows per request (default: the endpoint's limit). */
  chunkRows?: number;
  /** Requests in flight (default 4). */
  concurrency?: number;
}

/** AWS credentials as the SDK's default chain gives them. */
export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface RemoteIo {
  out?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** Default: the SDK's default chain (environment, profiles, SSO, container/instance roles); none = unsigned. */
  credentials?: () => Promise<Credentials | undefined>;
  env?: NodeJS.ProcessEnv;
  /** Where `.sst/outputs.json` is looked for (default: the working directory). */
  cwd?: string;
}

/** Lambda's request limit is 6 MB; a request is kept under 5 MB so headers and JSON framing never tip it over. */
const BODY_BUDGET = 5 * 1024 * 1024;
const MAX_ATTEMPTS = 4;

interface Summary {
  model: {
    buildId: string | null;
    /** A partitioned model's column and partition count (its summary has no classes, trees or schema). */
    partitionBy?: string;
    partitions?: number;
    task: "classification" | "regression";
    label: string;
    features: string[];
    classes: string[];
    trees: number;
    /** The model's table schema, when it has one (categorical or date columns). */
    schema?: import("@canopy/forest").TableSchema;
  };
  limits: { maxRows: number; maxBodyBytes: number };
}

type SourceData = string | ArrayBuffer | ArrayBufferView;
const bytesOf = (data: SourceData): string | Uint8Array =>
  typeof data === "string" ? data : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);

/** node:crypto SHA-256 / HMAC-SHA-256 in the shape @smithy/signature-v4 wants (what @smithy/hash-node does). */
class Sha256 {
  private hash: Hash | Hmac;
  private readonly secret?: string | Uint8Array;
  constructor(secret?: SourceData) {
    this.secret = secret === undefined ? undefined : bytesOf(secret);
    this.hash = this.make();
  }
  private make(): Hash | Hmac {
    return this.secret === undefined ? createHash("sha256") : createHmac("sha256", this.secret);
  }
  update(data: SourceData): void {
    this.hash.update(bytesOf(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
  reset(): void {
    this.hash = this.make();
  }
}

/** The region a Lambda function URL lives in (`<id>.lambda-url.<region>.on.aws`), else the environment's. */
export function signingRegion(url: URL, env: NodeJS.ProcessEnv): string {
  const m = /\.lambda-url\.([a-z0-9-]+)\.on\.aws$/.exec(url.hostname);
  return m?.[1] ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? "us-east-1";
}

/** The endpoint URL: --remote as given when it is a URL, else the app's predict URL with ?alias=<remote>. */
export function remoteUrl(remote: string, env: NodeJS.ProcessEnv, cwd: string): URL {
  if (/^https?:\/\//i.test(remote)) {
    try {
      return new URL(remote);
    } catch {
      throw new UsageError(`--remote ${remote}: not a valid URL`);
    }
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(remote)) throw new UsageError(`--remote ${JSON.stringify(remote)}: expected an http(s) URL or an alias name`);
  let base = env.CANOPY_PREDICT_URL;
  const outputs = `${cwd.replace(/\/$/, "")}/.sst/outputs.json`;
  if (!base && existsSync(outputs)) {
    try {
      base = (JSON.parse(readFileSync(outputs, "utf8")) as { predictUrl?: string }).predictUrl;
    } catch {
      // unreadable outputs: same as none
    }
  }
  if (!base) throw new UsageError(`--remote ${remote}: no predict URL for the alias; set CANOPY_PREDICT_URL or deploy the app (sst deploy writes predictUrl to .sst/outputs.json)`);
  const url = new URL(base);
  url.searchParams.set("alias", remote);
  return url;
}

/** Default credentials: the SDK's chain, or undefined when it finds none (then requests go unsigned). */
async function defaultCredentials(): Promise<Credentials | undefined> {
  const { defaultProvider } = await import("@aws-sdk/credential-provider-node");
  try {
    return await defaultProvider()();
  } catch {
    return undefined;
  }
}

interface Reply {
  status: number;
  body: string;
}

/** Sends one request (SigV4-signed for service "lambda" when there are credentials) over a keep-alive agent. */
function client(credentials: Credentials | undefined, region: string) {
  const agents = { "http:": new HttpAgent({ keepAlive: true }), "https:": new HttpsAgent({ keepAlive: true }) };
  let signer: Promise<import("@smithy/signature-v4").SignatureV4> | undefined;
  const getSigner = () =>
    (signer ??= import("@smithy/signature-v4").then(({ SignatureV4 }) => new SignatureV4({ service: "lambda", region, credentials: credentials!, sha256: Sha256 })));

  return {
    async send(method: "GET" | "POST", url: URL, body?: string): Promise<Reply> {
      let headers: Record<string, string> = { host: url.host, accept: "application/json", ...(body !== undefined ? { "content-type": "application/json" } : {}) };
      if (credentials) {
        const query: Record<string, string> = {};
        for (const [k, v] of url.searchParams) query[k] = v;
        const signed = await (await getSigner()).sign({
          method,
          protocol: url.protocol,
          hostname: url.hostname,
          ...(url.port ? { port: Number(url.port) } : {}),
          path: url.pathname,
          query,
          headers,
          ...(body !== undefined ? { body } : {}),
        });
        headers = signed.headers as Record<string, string>;
      }
      if (body !== undefined) headers["content-length"] = String(Buffer.byteLength(body));
      const request = url.protocol === "https:" ? httpsRequest : httpRequest;
      return new Promise<Reply>((resolve, reject) => {
        const req = request(url, { method, headers, agent: agents[url.protocol as "http:" | "https:"] }, (res) => {
          let text = "";
          res.setEncoding("utf8").on("data", (d: string) => (text += d));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
          res.on("error", reject);
        });
        req.on("error", reject);
        req.end(body);
      });
    },
    close() {
      agents["http:"].destroy();
      agents["https:"].destroy();
    },
  };
}

/** The endpoint's one-line reason, from Canopy's {"error"} or AWS's {"Message"} bodies. */
function reason(reply: Reply): string {
  try {
    const body = JSON.parse(reply.body) as { error?: string; Message?: string; message?: string };
    const text = body.error ?? body.Message ?? body.message;
    if (text) return text;
  } catch {
    // not JSON
  }
  return reply.body.trim().split("\n")[0].slice(0, 200) || "no message";
}

function refusal(reply: Reply, signed: boolean, what: string): Error {
  const why = reason(reply);
  if (reply.status === 403)
    return new FailedError(
      `${what}: 403 ${why}${signed ? " (the request was signed: are these AWS credentials allowed lambda:InvokeFunctionUrl?)" : " (the request was not signed: no AWS credentials found)"}`,
    );
  return reply.status >= 400 && reply.status < 500 ? new UsageError(`${what}: ${reply.status} ${why}`) : new FailedError(`${what}: ${reply.status} ${why}`);
}

const retryable = (status: number) => status === 429 || status === 502 || status === 503 || status === 504;

/** One row as JSON: numbers, null for missing. */
function rowJson(X: FeatureMatrix, r: number): string {
  const parts: string[] = new Array(X.nCols);
  for (let f = 0; f < X.nCols; f++) {
    const v = X.data[r * X.nCols + f];
    parts[f] = Number.isNaN(v) ? "null" : String(v);
  }
  return `[${parts.join(",")}]`;
}

/** One request: rows [start, end) of the input, and its JSON body. */
interface Chunk {
  start: number;
  end: number;
  body: string;
}

/** What a predict request answers (a partitioned model's: null for a row skipped, `errors` naming them, `label`). */
interface Answer {
  predictions: (string | number | null)[];
  classes?: string[];
  probabilities?: (number[] | null)[];
  errors?: { row: number; value: string | null; error: string }[];
  label?: string | null;
}

/** Consecutive row ranges whose JSON bodies stay under the byte budget and the row limit. */
export function chunkRows(X: FeatureMatrix, maxRows: number, budget: number): Chunk[] {
  return chunkBodies(X.nRows, (r) => rowJson(X, r), { head: `{"rows":[`, tail: "]}" }, maxRows, budget, (r) => `row ${r + 2}`);
}

/**
 * Items 0..n-1 as request bodies `head` + items joined by commas + `tail`, consecutive, each of at most `maxRows`
 * items and `budget` bytes; an item that fits no body is refused naming it (`name`).
 */
function chunkBodies(n: number, item: (i: number) => string, frame: { head: string; tail: string }, maxRows: number, budget: number, name: (i: number) => string): Chunk[] {
  const chunks: Chunk[] = [];
  const frameBytes = Buffer.byteLength(frame.head) + Buffer.byteLength(frame.tail);
  let start = 0;
  let items: string[] = [];
  let size = 0;
  const flush = (end: number) => {
    if (items.length === 0) return;
    chunks.push({ start, end, body: `${frame.head}${items.join(",")}${frame.tail}` });
    start = end;
    items = [];
    size = 0;
  };
  for (let i = 0; i < n; i++) {
    const text = item(i);
    const bytes = Buffer.byteLength(text);
    if (frameBytes + bytes > budget) throw new UsageError(`${name(i)} alone is larger than a request may be (${budget} bytes)`);
    if (items.length >= maxRows || frameBytes + size + 1 + bytes > budget) flush(i);
    size += (items.length > 0 ? 1 : 0) + bytes;
    items.push(text);
  }
  flush(n);
  return chunks;
}

/**
 * Sends the chunks, a few at a time, and returns their answers in order; a line of progress as they come (every
 * twentieth on a pipe, all of them in place on a terminal).
 */
async function sendChunks<T>(
  chunks: Chunk[],
  io: { send: (body: string) => Promise<Reply>; refused: (reply: Reply, chunk: Chunk) => Error; stderr: NodeJS.WritableStream; concurrency?: number },
): Promise<T[]> {
  const { stderr } = io;
  const results: T[] = new Array(chunks.length);
  const total = chunks.length === 0 ? 0 : chunks[chunks.length - 1]!.end - chunks[0]!.start;
  let next = 0;
  let done = 0;
  let rowsDone = 0;
  const tty = (stderr as NodeJS.WriteStream).isTTY === true;
  const every = Math.max(1, Math.ceil(chunks.length / 20));
  const worker = async () => {
    while (next < chunks.length) {
      const i = next++;
      const chunk = chunks[i]!;
      const reply = await io.send(chunk.body);
      if (reply.status !== 200) throw io.refused(reply, chunk);
      results[i] = JSON.parse(reply.body) as T;
      done++;
      rowsDone += chunk.end - chunk.start;
      const line = `${rowsDone}/${total} rows (${done}/${chunks.length} requests)`;
      if (tty) stderr.write(`\rcanopy: ${line}${done === chunks.length ? "\n" : ""}`);
      else if (done % every === 0 || done === chunks.length) stderr.write(`canopy: ${line}\n`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(io.concurrency ?? 4, chunks.length) }, worker));
  return results;
}

/** A cell as JSON carries it: a date as its ISO text, a Parquet INT64 as its digits. */
const jsonCell = (v: import("@canopy/forest").CellValue) => (v instanceof Date ? v.toISOString() : typeof v === "bigint" ? v.toString() : (v ?? null));

/** The rows as `{"records": [...]}` bodies under the row and byte limits; every request skips unknown partition values. */
function recordChunks(table: NamedTable, maxRows: number, budget: number, proba: boolean): Chunk[] {
  const record = (r: number) => JSON.stringify(Object.fromEntries(table.header.map((name, c) => [name, jsonCell(table.rows[r]![c])])));
  const frame = { head: `{"records":[`, tail: `],"skip_unknown":true${proba ? ',"proba":true' : ""}}` };
  return chunkBodies(table.rows.length, record, frame, maxRows, budget, (r) => `row ${table.numbers[r]}`);
}

/**
 * A partitioned model's answers, printed as a local predict prints them: the label's column (or one column per class
 * of every partition that answered, 0 where a partition lacks one), an empty cell for a row no model serves. Unknown
 * values fail the run (exit 2, naming their rows) unless --skip-unknown, as locally.
 */
async function writePartitioned(table: NamedTable, chunks: Chunk[], results: Answer[], partitionBy: string, options: RemoteOptions, out: NodeJS.WritableStream, note: (line: string) => void) {
  const core = await import("@canopy/core");
  const unknown: { row: number; value: string | undefined }[] = [];
  for (const [i, r] of results.entries()) for (const e of r.errors ?? []) unknown.push({ row: chunks[i]!.start + e.row, value: e.value ?? undefined });
  const where = (r: number) => `row ${table.numbers[r]}`;
  if (unknown.length > 0 && !options.skipUnknown) throw new UsageError(`${core.unknownPartitionMessage(partitionBy, unknown, where)}, and the partitioned model has no fallback`);
  // Each chunk answers with the classes of the partitions it reached: its probabilities are put in the order of all of them.
  const classes = options.proba ? core.classOrder(results.flatMap((r) => r.classes ?? [])) : [];
  const at = new Map(classes.map((c, i) => [c, i]));
  const probabilities = results.flatMap((r) =>
    (r.probabilities ?? []).map((p) => {
      if (p === null) return null;
      const row = new Array<number>(classes.length).fill(0);
      p.forEach((v, c) => (row[at.get(r.classes![c]!)!] = v));
      return row;
    }),
  );
  const label = results.find((r) => r.label)?.label;
  const lines = partitionedPredictionLines(options.proba === true, { predictions: results.flatMap((r) => r.predictions), classes, probabilities, ...(label ? { label } : {}) });
  out.write(`${lines.join("\n")}\n`);
  if (unknown.length > 0) note(`warning: ${core.unknownPartitionMessage(partitionBy, unknown, where)}; their predictions are empty (--skip-unknown)`);
}

/**
 * `canopy predict --remote`: the CSV is read and checked here (the same errors and row numbers as a local
 * predict), cut into requests under the endpoint's row limit and Lambda's 6 MB, sent a few at a time (signed
 * with SigV4 when AWS credentials are available), and the answers printed as CSV exactly like a local predict.
 * The first request learns the model; the rest are pinned to its build, so a promotion mid-run cannot mix models.
 */
export async function remotePredict(data: string, options: RemoteOptions, io: RemoteIo = {}): Promise<void> {
  const out = io.out ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const env = io.env ?? process.env;
  const note = (text: string) => stderr.write(`canopy: ${text}\n`);
  const url = remoteUrl(options.remote, env, io.cwd ?? process.cwd());
  if (options.model !== undefined) {
    if (url.searchParams.has("alias")) throw new UsageError("--model and an alias in --remote both choose the model; give one");
    const { inShort, isBuildId, isPartitionRunId } = await import("@canopy/core");
    if (!isBuildId(options.model) && !isPartitionRunId(options.model))
      throw new UsageError(`--model with --remote must be a build id (b- and 16 hex digits) or a partitioned run's (p-); got ${inShort(options.model)}`);
    url.searchParams.set("model", options.model);
  }
  // Read before connecting (a missing file is the user's error, whatever the endpoint): a partitioned model reads it again as a table.
  const csv = await readFile(data).then(
    (b) => new Uint8Array(b),
    (err: unknown) => {
      throw fileError(err, data, "data file") ?? err;
    },
  );

  const credentials = await (io.credentials ?? defaultCredentials)();
  if (!credentials && url.hostname.endsWith(".on.aws")) note("no AWS credentials found: sending unsigned requests (a function URL with IAM auth will refuse them)");
  const http = client(credentials, signingRegion(url, env));
  const what = `remote ${url.origin}${url.pathname}`;
  try {
    const send = async (method: "GET" | "POST", target: URL, body?: string): Promise<Reply> => {
      for (let attempt = 1; ; attempt++) {
        let reply: Reply | undefined;
        let error: unknown;
        try {
          reply = await http.send(method, target, body);
        } catch (err) {
          error = err;
        }
        if (reply && !retryable(reply.status)) return reply;
        if (attempt >= MAX_ATTEMPTS) {
          if (reply) return reply;
          const code = (error as NodeJS.ErrnoException).code;
          throw new FailedError(`${what}: ${code ?? (error as Error).message}`);
        }
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 100 * 2 ** attempt));
      }
    };

    const head = await send("GET", url);
    if (head.status !== 200) throw refusal(head, credentials !== undefined, what);
    const summary = JSON.parse(head.body) as Summary;
    const { model, limits } = summary;
    const pinned = new URL(url);
    if (model.buildId) {
      pinned.searchParams.delete("alias");
      pinned.searchParams.set("model", model.buildId);
    }
    if (options.proba) pinned.searchParams.set("proba", "1");
    const maxRows = Math.max(1, Math.min(options.chunkRows ?? limits.maxRows, limits.maxRows));
    const budget = Math.min(BODY_BUDGET, limits.maxBodyBytes);
    const post = (chunks: Chunk[], where: (c: Chunk) => string) =>
      sendChunks<Answer>(chunks, { send: (body) => send("POST", pinned, body), refused: (reply, c) => refusal(reply, credentials !== undefined, `${what} (${where(c)} of ${data})`), stderr, concurrency: options.concurrency });
    if (model.partitionBy !== undefined) {
      if (options.proba && model.task !== "classification") throw new UsageError("--proba needs a classification model; this partitioned model is regression");
      const table = await readNamedTable(data);
      if (!table.header.includes(model.partitionBy)) throw new UsageError(`${data}: no column ${JSON.stringify(model.partitionBy)}, which the partitioned model routes rows by`);
      // Every request skips unknown values: they are counted over the whole file, and refused here as a local predict refuses them.
      const chunks = recordChunks(table, maxRows, budget, options.proba === true);
      note(`${model.buildId ?? "partitioned model"} (${model.partitions ?? "?"} partitions by ${model.partitionBy}) at ${url.origin}: ${table.rows.length} rows in ${chunks.length} request${chunks.length === 1 ? "" : "s"}`);
      const results = await post(chunks, (c) => `rows ${table.numbers[c.start]}-${table.numbers[c.end - 1]}`);
      return writePartitioned(table, chunks, results, model.partitionBy, options, out, note);
    }
    if (options.skipUnknown) throw new UsageError(`--skip-unknown is for a partitioned model; ${model.buildId ?? "the endpoint's model"} is one forest`);
    if (options.proba && model.task !== "classification") throw new UsageError("--proba needs a classification model; this one is regression");
    // Cells are encoded here with the model's schema and sent as feature rows.
    const X = readFeatureCsv(csv, model.schema ?? model.features);
    const chunks = chunkRows(X, maxRows, budget);
    note(`${model.buildId ?? "model"} (${model.trees} trees) at ${url.origin}: ${X.nRows} rows in ${chunks.length} request${chunks.length === 1 ? "" : "s"}`);
    const results = await post(chunks, (c) => `rows ${c.start + 2}-${c.end + 1}`);

    const lines: string[] = [];
    if (options.proba) {
      lines.push(model.classes.map(csvField).join(","));
      for (const r of results) for (const p of r.probabilities ?? []) lines.push(p!.map(String).join(","));
    } else {
      lines.push(csvField(model.label));
      for (const r of results) for (const p of r.predictions) lines.push(typeof p === "number" ? String(p) : csvField(p as string));
    }
    out.write(`${lines.join("\n")}\n`);
  } finally {
    http.close();
  }
}
