/**
 * `@duet/client`: a client for Duet's `duet.v1` WebSocket protocol, with no UI and no runtime
 * dependency. See README.md.
 */

export { diff, predictServerDiff } from "./diff.js";
export {
  type Component,
  hasLoneSurrogate,
  MAX_LENGTH,
  OperationError,
  type Selection,
  splitsSurrogatePair,
  TextOperation,
} from "./operation.js";
export { ClientStateError, MAX_SEQ, OtClient, type Outgoing } from "./ot-client.js";
