// tests/a11y.py page_defects(): what axe does not check but issue #16 asks.
() => {
  const out = [];
  for (const attr of ['aria-describedby', 'aria-labelledby', 'aria-controls']) {
    for (const el of document.querySelectorAll('[' + attr + ']')) {
      for (const id of el.getAttribute(attr).split(/\s+/).filter(Boolean)) {
        if (!document.getElementById(id)) out.push(attr + ' names missing #' + id);
      }
    }
  }
  for (const label of document.querySelectorAll('label[for]')) {
    if (!document.getElementById(label.htmlFor)) out.push('label for missing #' + label.htmlFor);
  }
  for (const el of document.querySelectorAll('*')) {
    for (const a of el.getAttributeNames()) {
      if (a.startsWith('on')) out.push('inline handler ' + a + ' on <' + el.tagName.toLowerCase() + '>');
    }
  }
  const description = document.querySelector('meta[name=description]');
  if (!description || !description.content.trim()) out.push('no meta description');
  if (!document.querySelector('link[rel~=icon]')) out.push('no favicon link');
  return out;
}
