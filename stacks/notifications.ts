import { LINKS } from "@canopy/runtime-aws/names";

/** Build completion notifications: one message per finished build (COMPLETED or FAILED), with attributes for filtering. */
export function notifications() {
  const topic = new sst.aws.SnsTopic(LINKS.notifications);
  return { topic };
}
