import { LINKS } from "@canopy/runtime-aws/names";
import { permissionsOf } from "./access.ts";
import { functionDefaults } from "./defaults.ts";
import { PREDICT_HANDLER, type ServingSettings } from "./serving-settings.ts";

/**
 * The predict endpoint: a function URL (IAM auth by default) in front of the serving handler. It reads alias
 * items from the builds table and models from the bucket, so it links those two and may read only those.
 */
export function serving(settings: ServingSettings, { bucket, table }: { bucket: sst.aws.Bucket; table: sst.aws.Dynamo }) {
  const predict = new sst.aws.Function(LINKS.predict, {
    ...functionDefaults(),
    handler: PREDICT_HANDLER,
    description: "Canopy predict: serves a model by alias or build id over a function URL",
    link: [bucket, table],
    permissions: permissionsOf("predict", { bucket, table }),
    url: { authorization: settings.authorization },
    memory: `${settings.memoryMb} MB`,
    timeout: `${settings.timeoutSeconds} seconds`,
    environment: settings.environment,
  });
  return { predict };
}
