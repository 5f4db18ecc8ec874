/** Only Lambda may assume a function's role. */
const LAMBDA_TRUST_POLICY = JSON.stringify({
  Version: "2012-10-17",
  Statement: [{ Effect: "Allow", Action: "sts:AssumeRole", Principal: { Service: "lambda.amazonaws.com" } }],
});

/** Settings every function shares: the Lambda Node.js runtime and SST's default bundling (esbuild, minified ESM). */
export function functionDefaults() {
  return {
    runtime: "nodejs22.x",
    architecture: "x86_64",
    // SST 4.17 tests an Output (always truthy) where it means `dev`, so deployed roles would also trust the
    // account root, which only `sst dev` needs (it runs functions locally under their roles). Deploys trust Lambda.
    ...($dev ? {} : { transform: { role: { assumeRolePolicy: LAMBDA_TRUST_POLICY } } }),
  } as const;
}
