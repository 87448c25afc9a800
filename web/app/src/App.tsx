import { Component, lazy, type ReactNode, Suspense } from "react";
import { roomIdOfPath, usePath } from "./router";
import { StartPage } from "./StartPage";

// The room (CodeMirror, the client) is a chunk of its own: the start page does not need it.
const RoomPage = lazy(() => import("./RoomPage"));

/**
 * What the page shows when the room's code cannot be loaded (offline, or the server was
 * updated and no longer has the files this page names): a way out, not a blank page.
 */
class LoadFailure extends Component<{ children: ReactNode }, { failed: boolean }> {
  override state = { failed: false };

  static getDerivedStateFromError(): { failed: boolean } {
    return { failed: true };
  }

  override render() {
    if (!this.state.failed) {
      return this.props.children;
    }
    return (
      <main className="start">
        <p role="alert" className="error">
          The room could not be loaded: you may be offline, or the server was updated since this page was opened.
        </p>
        <button type="button" onClick={() => window.location.reload()}>
          Reload
        </button>
      </main>
    );
  }
}

export function App() {
  const roomId = roomIdOfPath(usePath());
  if (roomId !== undefined) {
    return (
      <LoadFailure key={roomId}>
        <Suspense fallback={<p className="loading">Loading the room…</p>}>
          <RoomPage key={roomId} roomId={roomId} />
        </Suspense>
      </LoadFailure>
    );
  }
  return <StartPage />;
}
