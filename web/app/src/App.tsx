import { RoomPage } from "./RoomPage";
import { StartPage } from "./StartPage";
import { usePath } from "./router";

export function App() {
  const path = usePath();
  const match = /^\/r\/([^/]+)\/?$/.exec(path);
  if (match) {
    const roomId = decodeURIComponent(match[1]!);
    return <RoomPage key={roomId} roomId={roomId} />;
  }
  return <StartPage />;
}
