/**
 * `@duet/client`: a client for Duet's `duet.v1` WebSocket protocol, with no UI and no runtime
 * dependency. `TextOperation` is the edit algebra (ot.js's, UTF-16 positions), `OtClient` the
 * client's OT rules, and `DuetClient` a reconnecting connection to one room that an editor
 * binding drives. See README.md.
 */

export { type BackoffOptions, backoffDelay, DEFAULT_BACKOFF } from "./backoff.js";
export { diff, predictServerDiff } from "./diff.js";
export {
  type Completion,
  connect,
  type ConnectionStatus,
  DuetClient,
  type DuetClientOptions,
  type DuetEvents,
  type ErrorEvent,
  type NetworkMonitor,
  type Participant,
  type RemoteChangeEvent,
  serverUrl,
  type SuggestionEvent,
  type WebSocketConstructor,
  type WebSocketLike,
  type WelcomeEvent,
} from "./duet-client.js";
export { Emitter, type Handler } from "./emitter.js";
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
export {
  type ClientMessage,
  CloseCode,
  encodeClientMessage,
  type ErrorCode,
  ProtocolError,
  readFrame,
  readMessage,
  type ServerMessage,
  SUBPROTOCOL,
  type WireOperation,
  type WireParticipant,
} from "./protocol.js";
