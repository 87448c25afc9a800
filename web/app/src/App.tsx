import { lazy, Suspense } from "react";
import { roomIdOfPath, usePath } from "./router";
import { StartPage } from "./StartPage";

// The room (CodeMirror, the client) is a chunk of its own: the start page does not need it.
const RoomPage = lazy(() => import("./RoomPage"));

export function App() {
  const roomId = roomIdOfPath(usePath());
  if (roomId !== undefined) {
    return (
      <Suspense fallback={<p className="loading">Loading the room…</p>}>
        <RoomPage key={roomId} roomId={roomId} />
      </Suspense>
    );
  }
  return <StartPage />;
}
