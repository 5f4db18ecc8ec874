import { AGGREGATION_TRIGGER_FILTER } from "@canopy/core";
import { describe, expect, it } from "vitest";
import { checkFilterPattern, matchesFilterPattern, passesFilters } from "../../src/emulator/filter.ts";

const image = (status: string, remaining: number) => ({ status: { S: status }, remaining: { N: String(remaining) }, buildId: { S: "b-1" } });
const record = (eventName: string, status: string, remaining: number) => ({ eventName, dynamodb: { NewImage: image(status, remaining), Keys: { buildId: { S: "b-1" } } } });

describe("Lambda filter patterns (exact values, nested keys)", () => {
  it("passes exactly the MODIFY that leaves a TRAINING build with nothing remaining", () => {
    checkFilterPattern(AGGREGATION_TRIGGER_FILTER);
    const f = AGGREGATION_TRIGGER_FILTER;
    expect(matchesFilterPattern(f, record("MODIFY", "TRAINING", 0))).toBe(true);
    expect(matchesFilterPattern(f, record("INSERT", "TRAINING", 0))).toBe(false);
    expect(matchesFilterPattern(f, record("MODIFY", "AGGREGATING", 0))).toBe(false);
    expect(matchesFilterPattern(f, record("MODIFY", "TRAINING", 1))).toBe(false);
    // Numbers are DynamoDB JSON strings: "0" is not the number 0, nor "00".
    expect(matchesFilterPattern(f, { eventName: "MODIFY", dynamodb: { NewImage: { status: { S: "TRAINING" }, remaining: { N: "00" } } } })).toBe(false);
    expect(matchesFilterPattern(f, { eventName: "MODIFY", dynamodb: { NewImage: { status: { S: "TRAINING" }, remaining: { N: 0 } } } })).toBe(false);
  });

  it("needs every key of the pattern, and matches list-valued fields by any element", () => {
    const f = { a: { b: ["x", 2, null] } };
    expect(matchesFilterPattern(f, { a: {} })).toBe(false);
    expect(matchesFilterPattern(f, { a: { b: null } })).toBe(true);
    expect(matchesFilterPattern(f, { a: { b: ["y", 2] } })).toBe(true);
    expect(matchesFilterPattern(f, { a: { b: ["y", "2"] } })).toBe(false);
    expect(matchesFilterPattern(f, { a: { b: { c: "x" } } })).toBe(false);
    expect(matchesFilterPattern(f, { a: "x" })).toBe(false);
    expect(matchesFilterPattern(f, { a: { b: "x", extra: 1 }, other: true })).toBe(true);
  });

  it("passes a record that matches any of several filters, and everything with none", () => {
    const filters = [{ k: ["a"] }, { k: ["b"] }];
    expect(passesFilters(filters, { k: "b" })).toBe(true);
    expect(passesFilters(filters, { k: "c" })).toBe(false);
    expect(passesFilters([], { k: "c" })).toBe(true);
  });

  it("refuses content filters and malformed patterns in one line", () => {
    expect(() => checkFilterPattern({ a: [{ prefix: "x" }] })).toThrow('filter pattern at a: content filter {"prefix":"x"} is not supported by this emulator (exact values only)');
    expect(() => checkFilterPattern({ a: { b: [] } })).toThrow("filter pattern at a.b: an empty list matches nothing");
    expect(() => checkFilterPattern({ a: "x" })).toThrow("filter pattern at a must be an object");
    expect(() => checkFilterPattern([])).toThrow("filter pattern must be an object");
  });
});
