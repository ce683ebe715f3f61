import type { Result } from '../../../engine/result.js';
import { err, ok } from '../../../engine/result.js';

export interface JsonSyntaxError {
  line: number;
  column: number;
  message: string;
}

/** 1-based line and column of a character offset. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lines = before.split('\n');
  return { line: lines.length, column: lines[lines.length - 1]!.length + 1 };
}

/**
 * JSON.parse, with the failure's line and column. V8 gives no offset for some errors ("Unexpected token ','"), so
 * on failure a small scanner walks the text to find where it stops being JSON.
 */
export function parseJsonText(raw: string): Result<unknown, JsonSyntaxError> {
  // A byte-order mark is invisible in editors; drop it rather than report it.
  const text = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
  try {
    return ok(JSON.parse(text));
  } catch (e) {
    const found = findJsonError(text);
    const offset = found?.offset ?? text.length;
    const message = found?.message ?? (e as Error).message;
    return err({ ...lineColumn(text, offset), message });
  }
}

/** The first syntax error in `text` (offset and what was expected), or undefined if it is valid JSON. */
export function findJsonError(text: string): { offset: number; message: string } | undefined {
  let i = 0;
  class Stop {
    constructor(readonly offset: number, readonly message: string) {}
  }
  const describe = (at: number): string =>
    at >= text.length ? 'end of input' : `${JSON.stringify(text[at])}`;
  const fail = (expected: string): never => {
    throw new Stop(i, `expected ${expected} but found ${describe(i)}`);
  };
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const literal = (word: string): void => {
    if (text.startsWith(word, i)) i += word.length;
    else fail('a JSON value');
  };
  const string = (): void => {
    if (text[i] !== '"') fail('a double-quoted string');
    i++;
    while (i < text.length && text[i] !== '"') {
      const c = text[i]!;
      if (c < ' ') fail('a closing quote');
      if (c === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail('4 hex digits after \\u');
          i += 5;
        } else if (i < text.length && '"\\/bfnrt'.includes(text[i]!)) i++;
        else fail('a valid escape');
      } else i++;
    }
    if (i >= text.length) fail('a closing quote');
    i++;
  };
  const number = (): void => {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (!m || m[0] === '' || m[0] === '-') fail('a JSON value');
    i += m![0].length;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        string();
        ws();
        if (text[i] !== ':') fail("':' after a property name");
        i++;
        value();
        ws();
        if (text[i] === ',') {
          i++;
          ws();
          if (text[i] === '}') fail('a property name after , (trailing comma)');
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        fail("',' or '}'");
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ',') {
          i++;
          ws();
          if (text[i] === ']') fail('a value after , (trailing comma)');
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        fail("',' or ']'");
      }
    } else if (c === '"') string();
    else if (c === 't') literal('true');
    else if (c === 'f') literal('false');
    else if (c === 'n') literal('null');
    else number();
  };
  try {
    value();
    ws();
    if (i < text.length) fail('end of input');
    return undefined;
  } catch (e) {
    if (e instanceof Stop) return { offset: e.offset, message: e.message };
    throw e;
  }
}
