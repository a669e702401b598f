/**
 * A first-in first-out queue over a circular array: push and shift in O(1), and its memory stays
 * flat under a constant number of queued items. (An array with a moving head index, compacted
 * only when it runs empty, grows by one slot per push while it never empties: 8 bytes per send
 * under sustained load, measured.)
 */
export class Fifo<T> {
  private items: (T | undefined)[];
  private mask: number;
  private head = 0;
  private size = 0;

  constructor(capacity = 16) {
    let c = 16;
    while (c < capacity) c *= 2;
    this.items = new Array<T | undefined>(c).fill(undefined);
    this.mask = c - 1;
  }

  get length(): number {
    return this.size;
  }

  push(item: T): void {
    if (this.size === this.items.length) this.grow();
    this.items[(this.head + this.size) & this.mask] = item;
    this.size++;
  }

  /** Puts `item` first (before everything queued). */
  unshift(item: T): void {
    if (this.size === this.items.length) this.grow();
    this.head = (this.head - 1) & this.mask;
    this.items[this.head] = item;
    this.size++;
  }

  /** The first item, or undefined when empty. */
  peek(): T | undefined {
    return this.size === 0 ? undefined : this.items[this.head];
  }

  /** The item `i` places after the first (0 = the first). */
  at(i: number): T | undefined {
    return i < this.size ? this.items[(this.head + i) & this.mask] : undefined;
  }

  /** Removes and returns the first item (undefined when empty); its slot no longer references it. */
  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) & this.mask;
    this.size--;
    return item;
  }

  /** Removes every item and returns them in order. */
  drain(): T[] {
    const out: T[] = [];
    while (this.size > 0) out.push(this.shift()!);
    return out;
  }

  /** Removes the items for which `pick` is true and returns them in order; keeps the others in order. */
  removeIf(pick: (item: T) => boolean): T[] {
    const out: T[] = [];
    const n = this.size;
    for (let i = 0; i < n; i++) {
      const item = this.shift()!;
      if (pick(item)) out.push(item);
      else this.push(item);
    }
    return out;
  }

  private grow(): void {
    const old = this.items;
    const n = old.length;
    const next = new Array<T | undefined>(2 * n).fill(undefined);
    for (let i = 0; i < this.size; i++) next[i] = old[(this.head + i) & this.mask];
    this.items = next;
    this.mask = 2 * n - 1;
    this.head = 0;
  }
}
