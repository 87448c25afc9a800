import { type FormEvent, useEffect, useState } from "react";
import { createRoom, fetchLanguages, LANGUAGES, type Language, pageToken } from "./api";
import { NameField } from "./NameField";
import { navigate, roomIdFrom } from "./router";

function roomPath(roomId: string): string {
  const token = pageToken();
  return `/r/${encodeURIComponent(roomId)}${token ? `?token=${encodeURIComponent(token)}` : ""}`;
}

export function StartPage() {
  const [languages, setLanguages] = useState<Language[]>(LANGUAGES);
  const [language, setLanguage] = useState("python");
  const [code, setCode] = useState("");
  const [link, setLink] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");

  useEffect(() => {
    let live = true;
    fetchLanguages()
      .then((list) => live && list.length > 0 && setLanguages(list))
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, []);

  const create = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError("");
    try {
      navigate(roomPath(await createRoom(language, code)));
    } catch (failure) {
      setError(`Could not create the room: ${(failure as Error).message}`);
      setBusy(false);
    }
  };

  const join = (event: FormEvent) => {
    event.preventDefault();
    const roomId = roomIdFrom(link);
    if (roomId === undefined) {
      setError("That is not a room link or id.");
      return;
    }
    navigate(roomPath(roomId));
  };

  return (
    <main className="start">
      <h1>Duet</h1>
      <p>Edit code together, in real time.</p>
      <NameField />
      <form className="card" onSubmit={create} aria-labelledby="create-heading">
        <h2 id="create-heading">Create a room</h2>
        <label>
          Language
          <select value={language} onChange={(event) => setLanguage(event.target.value)}>
            {languages.map((entry) => (
              <option key={entry.id} value={entry.id}>
                {entry.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Starting code (optional)
          <textarea value={code} onChange={(event) => setCode(event.target.value)} rows={6} spellCheck={false} />
        </label>
        <button type="submit" disabled={busy}>
          {busy ? "Creating…" : "Create room"}
        </button>
      </form>
      <form className="card" onSubmit={join} aria-labelledby="join-heading">
        <h2 id="join-heading">Join a room</h2>
        <label>
          Room link or id
          <input value={link} onChange={(event) => setLink(event.target.value)} placeholder="https://…/r/…" />
        </label>
        <button type="submit">Join</button>
      </form>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
    </main>
  );
}
