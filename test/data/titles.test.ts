import { describe, expect, it } from "vitest";
import { cleanMovieLensTitle } from "../../src/data/titles.js";

describe("cleanMovieLensTitle", () => {
  it("moves a trailing article to the front and keeps the year", () => {
    expect(cleanMovieLensTitle("Godfather, The (1972)")).toBe("The Godfather (1972)");
    expect(cleanMovieLensTitle("Clockwork Orange, A (1971)")).toBe("A Clockwork Orange (1971)");
    expect(cleanMovieLensTitle("Officer and a Gentleman, An (1982)")).toBe(
      "An Officer and a Gentleman (1982)",
    );
    expect(
      cleanMovieLensTitle("Good, the Bad and the Ugly, The (Buono, il brutto, il cattivo, Il) (1966)"),
    ).toBe("The Good, the Bad and the Ugly (1966)");
  });
  it("removes other parenthesised parts", () => {
    expect(cleanMovieLensTitle("City of Lost Children, The (Cité des enfants perdus, La) (1995)")).toBe(
      "The City of Lost Children (1995)",
    );
    expect(cleanMovieLensTitle("Shanghai Triad (Yao a yao yao dao waipo qiao) (1995)")).toBe(
      "Shanghai Triad (1995)",
    );
    expect(cleanMovieLensTitle("Toy Story (1995)")).toBe("Toy Story (1995)");
  });
  it("keeps non-English articles (as the official code) and titles without a year", () => {
    expect(cleanMovieLensTitle("Misérables, Les (1995)")).toBe("Misérables, Les (1995)");
    expect(cleanMovieLensTitle("Babylon 5")).toBe("Babylon 5");
    expect(cleanMovieLensTitle("Runaway Brain (1995) ")).toBe("Runaway Brain (1995)");
    expect(cleanMovieLensTitle("Death Note: Desu nôto (2006–2007)")).toBe(
      "Death Note: Desu nôto (2006–2007)",
    );
    expect(cleanMovieLensTitle("Sam, Andy (2001)")).toBe("Sam, Andy (2001)");
  });
});
