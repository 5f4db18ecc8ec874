import { PublishCommand, type MessageAttributeValue, type SNSClient } from "@aws-sdk/client-sns";
import type { BuildNotification, CanopyNotification, Notifier } from "@canopy/core";
import { clients } from "./clients.ts";
import { AwsSetupError } from "./errors.ts";

/**
 * Message attributes for subscription filter policies: `buildId` (a study's: `studyId`, a partitioned run's: `runId`), `status` and `type` as
 * Strings, and `tags` as the JSON of the tag map (String). To filter on one tag, use a policy with FilterPolicyScope
 * MessageBody on `tags.<name>`: the message body is the notification JSON.
 */
export function notificationAttributes(n: CanopyNotification): Record<string, MessageAttributeValue> {
  const str = (value: string): MessageAttributeValue => ({ DataType: "String", StringValue: value });
  return {
    ...("studyId" in n ? { studyId: str(n.studyId) } : "runId" in n ? { runId: str(n.runId) } : { buildId: str(n.buildId) }),
    status: str(n.status),
    type: str(n.type),
    tags: str(JSON.stringify(n.tags ?? {})),
  };
}

/** Publishes each build notification to one SNS topic, body = the notification as JSON. */
export class SnsNotifier implements Notifier {
  constructor(
    readonly topicArn: string,
    private readonly client: SNSClient = clients.sns(),
  ) {}

  async publish(notification: CanopyNotification): Promise<void> {
    const subject =
      "studyId" in notification ? `Canopy study ${notification.studyId}` : "runId" in notification ? `Canopy partitioned run ${notification.runId}` : `Canopy build ${notification.buildId}`;
    await this.client.send(
      new PublishCommand({
        TopicArn: this.topicArn,
        Subject: `${subject} ${notification.status}`.slice(0, 100),
        Message: JSON.stringify(notification),
        MessageAttributes: notificationAttributes(notification),
      }),
    );
  }
}

export interface SnsDelivery {
  messageId: string;
  notification: BuildNotification;
  /** Message attributes as name -> value. */
  attributes: Record<string, string>;
}

/**
 * Reads what an SQS queue subscribed to the topic receives (raw message delivery off): the SNS envelope
 * `{ Type: "Notification", MessageId, Message, MessageAttributes: { name: { Type, Value } } }`.
 */
export function decodeSnsDelivery(body: string): SnsDelivery {
  const envelope = JSON.parse(body) as {
    Type?: string;
    MessageId?: string;
    Message?: string;
    MessageAttributes?: Record<string, { Type: string; Value: string }>;
  };
  if (envelope.Type !== "Notification" || typeof envelope.Message !== "string")
    throw new AwsSetupError(`not an SNS notification envelope (Type ${JSON.stringify(envelope.Type ?? null)})`);
  const attributes = Object.fromEntries(Object.entries(envelope.MessageAttributes ?? {}).map(([k, v]) => [k, v.Value]));
  return { messageId: envelope.MessageId ?? "", notification: JSON.parse(envelope.Message) as BuildNotification, attributes };
}
