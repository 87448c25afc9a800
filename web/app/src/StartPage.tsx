import { type FormEvent, useEffect, useState } from "react";
import { createRoom, fetchLanguages, LANGUAGES, type Language } from "./api";
import { NameField } from "./NameField";
import { randomName, storedName, storeName } from "./names";
import { navigate, roomIdFrom, roomPath, tokenFrom } from "./router";
import { adoptToken } from "./session";

/** `/`: create a room (language, optional starting code) or join one from a link or id. */
export function StartPage() {
  const [languages, setLanguages] = useState<Language[]>(LANGUAGES);
  const [language, setLanguage] = useState("python");
  const [code, setCode] = useState("");
  const [link, setLink] = useState("");
  const [name, setName] = useState(() => storedName() ?? randomName());
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");

  useEffect(() => {
    document.title = "Duet";
    let live = true;
    void fetchLanguages().then((list) => live && setLanguages(list));
    return () => {
      live = false;
    };
  }, []);

  const create = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError("");
    try {
      const roomId = await createRoom(language, code);
      storeName(name);
      navigate(roomPath(roomId));
    } catch (failure) {
      setError(`Could not create the room: ${(failure as Error).message}`);
      setBusy(false);
    }
  };

  const join = (event: FormEvent) => {
    event.preventDefault();
    const roomId = roomIdFrom(link);
    if (roomId === undefined) {
      setError("That is neither a room link nor a room id.");
      return;
    }
    // A pasted share link's token goes with it, kept for its room.
    const token = tokenFrom(link);
    if (token !== undefined) {
      adoptToken(token);
    }
    storeName(name);
    navigate(roomPath(roomId));
  };

  return (
    <main className="start">
      <h1>Duet</h1>
      <p>Edit code together, in real time.</p>
      <div className="card">
        <NameField value={name} onChange={setName} />
      </div>
      <form className="card" onSubmit={create} aria-labelledby="create-heading">
        <h2 id="create-heading">Create a room</h2>
        <label className="field">
          Language
          <select value={language} onChange={(event) => setLanguage(event.target.value)}>
            {languages.map((entry) => (
              <option key={entry.id} value={entry.id}>
                {entry.name}
              </option>
            ))}
          </select>
        </label>
        <label className="field">
          Starting code (optional)
          <textarea value={code} onChange={(event) => setCode(event.target.value)} rows={6} spellCheck={false} />
        </label>
        <button type="submit" disabled={busy}>
          {busy ? "Creating…" : "Create room"}
        </button>
      </form>
      <form className="card" onSubmit={join} aria-labelledby="join-heading">
        <h2 id="join-heading">Join a room</h2>
        <label className="field">
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
