/** Base class: every error the engine throws on bad input is a CanopyError with a one-line message. */
export class CanopyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A CSV that cannot become a dataset. `row` is 1-based counting the header as row 1; `column` is the header name. */
export class CsvError extends CanopyError {
  constructor(
    message: string,
    readonly row?: number,
    readonly column?: string,
  ) {
    super(message);
  }
}

/** Bytes or JSON that are not a valid Canopy artifact (model, grove, dataset pack) of a supported version. */
export class FormatError extends CanopyError {}

/** An invalid learner option (out of range, wrong type, inconsistent with the data). */
export class OptionsError extends CanopyError {}
