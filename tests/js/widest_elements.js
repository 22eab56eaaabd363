// tests/a11y.py widest_elements(): elements past the window's right edge.
(limit) => {
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.right > window.innerWidth + 1 && r.width > 0 && el.checkVisibility()) {
      out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
        (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ').join('.') : '') +
        ' right=' + Math.round(r.right));
    }
  }
  return out.slice(0, limit);
}
