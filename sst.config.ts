/// <reference path="./.sst/platform/config.d.ts" />

// SST forbids top-level imports here: each concern lives in stacks/*.ts, imported inside run().
export default $config({
  app(input) {
    return {
      name: "canopy",
      // The CLI refuses to run this app with another version than the one package.json pins.
      version: "4.17.1",
      home: "aws",
      removal: input?.stage === "production" ? "retain" : "remove",
      protect: input?.stage === "production",
    };
  },
  async run() {
    const { linkNamesOnly } = await import("./stacks/access.ts");
    const { readSettings } = await import("./stacks/settings.ts");
    const { storage } = await import("./stacks/storage.ts");
    const { notifications } = await import("./stacks/notifications.ts");
    const { training } = await import("./stacks/training.ts");
    const { aggregation } = await import("./stacks/aggregation.ts");
    const { sweeper } = await import("./stacks/sweeper.ts");
    const { readServingSettings } = await import("./stacks/serving-settings.ts");
    const { serving } = await import("./stacks/serving.ts");

    // Before any component exists: links carry names, and each function gets its own exact permissions.
    linkNamesOnly();
    const settings = readSettings(process.env);
    const { bucket, table } = storage();
    const { topic } = notifications();
    const { groves } = training(settings, { bucket, table, topic });
    aggregation(settings, { bucket, table, topic, groves });
    sweeper(settings, { bucket, table, topic, groves });
    const { predict } = serving(readServingSettings(process.env), { bucket, table });

    return {
      bucket: bucket.name,
      queue: groves.url,
      table: table.name,
      topic: topic.arn,
      // canopy predict --remote <alias> reads this from .sst/outputs.json.
      predictUrl: predict.url,
    };
  },
});
