import { errorLine, type CanopyNotification } from "@canopy/core";
import { formatNotification } from "./format.ts";

/**
 * Where the embedded runtime announces a build: one terminal line on stderr (or `onNotify` instead) and, with
 * `notifyUrl`, a JSON POST. Never throws: a failed callback or POST is a warning, not a failed build.
 */
export function announce(options: { onNotify?: (n: CanopyNotification) => void; notifyUrl?: string; warn: (message: string) => void }) {
  const { warn } = options;
  return async (notification: CanopyNotification): Promise<void> => {
    try {
      if (options.onNotify) options.onNotify(notification);
      else process.stderr.write(`${formatNotification(notification)}\n`);
    } catch (err) {
      warn(`notification callback failed: ${errorLine(err)}`);
    }
    const url = options.notifyUrl;
    if (!url) return;
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(notification),
        signal: AbortSignal.timeout(10_000),
      });
      if (!response.ok) warn(`notification POST to ${url} answered ${response.status} ${response.statusText}`.trim());
    } catch (err) {
      warn(`notification POST to ${url} failed: ${errorLine(err)}`);
    }
  };
}
