import { InputError, InternalError, policyOf } from "@canopy/core";
import { describe, expect, it } from "vitest";
import { createHandler, ServingError, type ModelProvider } from "../src/index.ts";
import { json, post } from "./support.ts";

/** A provider whose every lookup throws `err`: what a broken store or a bad selector looks like to the handler. */
const throwing = (err: unknown): ModelProvider => ({ defaultSelector: { alias: "production" }, get: async () => Promise.reject(err) });

describe("the handler answers by the error's policy", () => {
  it("a ServingError's policy follows its status", () => {
    expect(policyOf(new ServingError(404, "alias not set"))).toBe("input");
    expect(policyOf(new ServingError(500, "model cannot be loaded"))).toBe("internal");
  });

  it("an input error is the client's (400); an internal fault, even one that reads like input, is ours (500)", async () => {
    const input = await createHandler({ models: throwing(new InputError("no such alias file")) })(post('{"rows": [[1]]}'));
    expect(input.status).toBe(400);
    expect(json(input).error).toBe("InputError: no such alias file");

    const errors: unknown[] = [];
    const h = createHandler({ models: throwing(new InternalError("alias file aliases/production.json is not valid JSON")), onError: (e) => errors.push(e) });
    const internal = await h(post('{"rows": [[1]]}'));
    expect(internal.status).toBe(500);
    expect(json(internal).error).toBe("internal error: InternalError: alias file aliases/production.json is not valid JSON");
    expect(errors).toHaveLength(1);
  });
});
