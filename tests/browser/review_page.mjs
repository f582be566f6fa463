// Drives the staff review page in Debian's chromium (playwright-core, no bundled browser) as a billing
// manager: sign in with a bearer token, approve one held action, reject another, save screenshots.
//
// Environment (set by tests/browser/test_review_page.py):
//   BASE_URL           the worker's web server, e.g. http://127.0.0.1:6066
//   TOKEN              the billing manager's bearer token
//   APPROVE_ACTION_ID  the held action to approve
//   REJECT_ACTION_ID   the held action to reject
//   ARTIFACT_DIR       where the screenshots go (test-artifacts/browser)
//   CHROMIUM           the browser binary (default /usr/bin/chromium)
// Prints one JSON line with what it saw; exits non-zero on the first failed expectation.
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};
const BASE_URL = env("BASE_URL");
const TOKEN = env("TOKEN");
const APPROVE = env("APPROVE_ACTION_ID");
const REJECT = env("REJECT_ACTION_ID");
const ARTIFACTS = env("ARTIFACT_DIR");
const CHROMIUM = env("CHROMIUM", "/usr/bin/chromium");
const TIMEOUT_MS = 20_000;

function expect(condition, message) {
  if (!condition) throw new Error(`expectation failed: ${message}`);
}

async function focusedId(page) {
  return page.evaluate(() => document.activeElement && document.activeElement.id);
}

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  // A fresh profile every run: no cached state, no stored token from an earlier run.
  const profile = mkdtempSync(join(tmpdir(), "billwise-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    // --user-data-dir is the profile above (playwright passes it); the rest keeps the browser offline
    // and quiet in CI: no sandbox (containers), no GPU, no QUIC, no first-run, no background traffic.
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1366, height: 900 },
  });
  const seen = { console_errors: [], requests_elsewhere: [], failed_responses: [] };
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(TIMEOUT_MS);
    page.on("console", (message) => {
      if (message.type() === "error") seen.console_errors.push(message.text());
    });
    page.on("response", (response) => {
      if (response.status() >= 400) seen.failed_responses.push(`${response.status()} ${response.url()}`);
    });
    page.on("request", (request) => {
      if (!request.url().startsWith(BASE_URL)) seen.requests_elsewhere.push(request.url());
    });

    await page.goto(`${BASE_URL}/ui/review`);
    expect((await page.title()) === "Billwise review queue", "page title");
    expect((await focusedId(page)) === "token", "the token field has focus on arrival");

    // Every form control has a label (accessibility), checked in the page itself.
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll("input, select, textarea")]
        .filter((el) => el.type !== "hidden" && el.labels.length === 0)
        .map((el) => el.id || el.name),
    );
    expect(unlabelled.length === 0, `unlabelled controls: ${unlabelled}`);

    // Sign in with the keyboard: type the token, Tab to the button, press Enter.
    await page.getByLabel("Access token").fill(TOKEN);
    await page.keyboard.press("Tab");
    expect((await page.evaluate(() => document.activeElement.textContent)) === "Sign in", "Tab reaches Sign in");
    await page.keyboard.press("Enter");
    await page.getByText("Signed in as u-mgr (billing manager)").waitFor();
    expect(
      (await page.evaluate(() => sessionStorage.getItem("billwise.token"))) === TOKEN,
      "the token is kept in sessionStorage",
    );
    expect((await page.evaluate(() => localStorage.length)) === 0, "nothing in localStorage");

    const row = (actionId) => page.locator(`#queue-body tr[data-action-id="${actionId}"]`);
    await row(APPROVE).waitFor();
    await row(REJECT).waitFor();
    seen.queue_rows = await page.locator("#queue-body tr").count();

    // Approve: open the action from the keyboard, read its draft and explanation, approve with a note.
    await row(APPROVE).getByRole("button", { name: /^Open / }).focus();
    await page.keyboard.press("Enter");
    await page.locator("#detail").waitFor({ state: "visible" });
    expect((await focusedId(page)) === "detail-heading", "focus moves to the opened action");
    seen.approve_draft = await page.locator("#detail-body").textContent();
    expect(seen.approve_draft.length > 0, "the draft is shown");
    seen.approve_rules = await page.locator("#detail-rules li").count();
    expect(seen.approve_rules > 0, "the explanation lists the gates");
    seen.plan_rows = await page.locator("#detail-plans tbody tr").count();
    await page.getByLabel("Note for the audit trail (optional)").fill("Approved in the browser test");
    await page.screenshot({ path: join(ARTIFACTS, "review-page-action.png"), fullPage: true });
    await page.getByRole("button", { name: "Approve", exact: true }).click();
    await page.getByRole("status").getByText(/^Approved /).waitFor();
    await row(APPROVE).waitFor({ state: "detached" });
    expect((await focusedId(page)) === "queue-heading", "focus returns to the queue");

    // Reject the other one.
    await row(REJECT).getByRole("button", { name: /^Open / }).click();
    await page.getByLabel("Note for the audit trail (optional)").fill("Rejected in the browser test");
    await page.getByRole("button", { name: "Reject" }).click();
    await page.getByRole("status").getByText(/^Rejected /).waitFor();
    await row(REJECT).waitFor({ state: "detached" });
    seen.status = await page.getByRole("status").textContent();
    await page.screenshot({ path: join(ARTIFACTS, "review-page-after.png"), fullPage: true });

    expect(seen.failed_responses.length === 0, `failed responses: ${seen.failed_responses}`);
    expect(seen.console_errors.length === 0, `console errors: ${seen.console_errors}`);
    expect(seen.requests_elsewhere.length === 0, `requests to other origins: ${seen.requests_elsewhere}`);
    seen.ok = true;
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
    process.stdout.write(JSON.stringify(seen) + "\n");
  }
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
